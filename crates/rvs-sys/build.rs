//! Builds the XDP program from its C source with clang (`-target bpf`); the object goes to
//! `OUT_DIR` and into the crate with `include_bytes_aligned!`. No binary is committed.
//!
//! Needs Debian's `clang` and `libbpf-dev` (bpf_helpers.h) and the kernel's UAPI headers
//! (`linux-libc-dev`); `scripts/test` installs them. Without clang or libbpf-dev the crate
//! still builds, with an empty object: `--fast-path xdp` then refuses with the reason (and
//! the daemon runs as with `--fast-path off`); a clang that fails on the source stops the
//! build.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let src = "bpf/fastpath.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=bpf/fastpath.h");
    println!("cargo:rerun-if-env-changed=RVS_BPF_CLANG");
    let clang = std::env::var("RVS_BPF_CLANG").unwrap_or_else(|_| "clang".into());
    // <asm/types.h> lives under the multiarch include directory on Debian.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => other,
    };
    let obj = out.join("fastpath.bpf.o");
    // Without the toolchain rvs still builds (the README's demo on a fresh machine): the
    // object is empty and `--fast-path xdp` says why it is not available.
    let missing = |why: String| {
        println!("cargo:warning=rvs-sys: {why}; the XDP fast path will not be available");
        println!("cargo:rustc-env=RVS_XDP_MISSING={why}");
        std::fs::write(&obj, b"").expect("writing OUT_DIR");
    };
    let helpers = "/usr/include/bpf/bpf_helpers.h";
    // Installing (or upgrading) the toolchain rebuilds the object.
    println!("cargo:rerun-if-changed={helpers}");
    println!("cargo:rerun-if-changed=/usr/bin/{clang}");
    if !std::path::Path::new(helpers).exists() {
        return missing(format!("{helpers} not found (Debian package libbpf-dev)"));
    }
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&obj)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed to build {src} ({s})"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            missing(format!("{clang} not found (Debian package clang)"))
        }
        Err(e) => panic!("cannot run {clang} to build {src}: {e}"),
    }
}
