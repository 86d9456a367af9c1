//! The layout rule of every crate's integration tests: one test binary (`tests/tests.rs`,
//! `autotests = false`) with a module per feature, so each `.rs` file in `tests/` must be
//! declared there or it is never compiled.

use std::path::Path;

/// Panics naming every `.rs` file in `tests_dir` that `tests_dir/tests.rs` does not declare
/// as a module (`mod name;` on its own line).
pub fn assert_every_test_file_is_a_module(tests_dir: &Path) {
    let root = std::fs::read_to_string(tests_dir.join("tests.rs")).unwrap();
    let mut forgotten = Vec::new();
    for e in std::fs::read_dir(tests_dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(module) = name.strip_suffix(".rs") {
            if module != "tests" && !root.contains(&format!("\nmod {module};\n")) {
                forgotten.push(name);
            }
        }
    }
    assert!(
        forgotten.is_empty(),
        "never compiled: add `mod <name>;` to {}/tests.rs for {forgotten:?}",
        tests_dir.display()
    );
}
