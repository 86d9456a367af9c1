//! Builds `tarn-measure-launcher` (launcher/main.rs) on Unix for `run_measured`: a small
//! program that a measured child is started through, so the child's `ru_maxrss` is its own
//! peak and not the test process's (see launcher/main.rs). Compiled with the same `rustc`
//! into `OUT_DIR`; its path reaches the crate as `TARN_MEASURE_LAUNCHER`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=launcher/main.rs");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_CFG_UNIX").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").expect("cargo sets RUSTC");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let bin = out.join("tarn-measure-launcher");
    let status = Command::new(rustc)
        .args(["--edition=2021", "-O", "--crate-name=tarn_measure_launcher"])
        .args(["--target", &target, "-o"])
        .arg(&bin)
        .arg("launcher/main.rs")
        .status()
        .expect("run rustc for launcher/main.rs");
    assert!(status.success(), "rustc failed on launcher/main.rs");
    println!("cargo:rustc-env=TARN_MEASURE_LAUNCHER={}", bin.display());
}
