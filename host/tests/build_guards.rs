// SPDX-License-Identifier: GPL-2.0

//! Build-time refusals of the module, compiled here from the module's own
//! files with the kernel configuration they refuse.

use std::process::Command;

fn rustc(cfgs: &[&str], file: &str) -> (bool, String) {
    let out_dir = std::env::temp_dir().join(format!("execmem_guard_{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut cmd = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    cmd.args(["--edition", "2021", "--crate-type", "lib", "--out-dir"])
        .arg(&out_dir)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + file);
    for c in cfgs {
        cmd.args(["--cfg", c]);
    }
    let out = cmd.output().expect("run rustc");
    let _ = std::fs::remove_dir_all(&out_dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Review finding 17: code is called through a plain function pointer,
/// which kCFI would trap; such a kernel must not get a module at all.
#[test]
fn kcfi_kernels_are_refused_at_build_time() {
    let (ok, err) = rustc(&["CONFIG_CFI_CLANG"], "execmem/backend/cfi.rs");
    assert!(!ok, "built with CONFIG_CFI_CLANG");
    assert!(
        err.contains("CONFIG_CFI_CLANG") && err.contains("trap"),
        "no reason given: {err}"
    );
    let (ok, err) = rustc(&[], "execmem/backend/cfi.rs");
    assert!(ok, "refused without CONFIG_CFI_CLANG: {err}");
}
