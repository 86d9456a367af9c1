// Lean compiler output
// Module: Plausible.Gen.Basic
// Imports: Init
#include <lean/lean.h>
