// Lean compiler output
// Module: Plausible.Attr
// Imports: Init
#include <lean/lean.h>
