//! Compiles the mesh's forwarder (`forwarder/`, std only) into a static Linux binary that sandbox
//! embeds and packages `FROM scratch` at first use (`src/engine/forwarder.rs`). It is built with
//! `rustc` alone (the rlib, then the binary), so sandbox's own build needs nothing more.
//!
//! Sets `SANDBOX_FORWARDER_BIN` to the binary's path; on a target other than Linux, or with
//! `SANDBOX_FORWARDER_BUILD=skip`, to an empty file (then sandbox needs `SANDBOX_FORWARDER` at run
//! time).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=forwarder/src");
    println!("cargo:rerun-if-env-changed=SANDBOX_FORWARDER_BUILD");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let skip = env::var("SANDBOX_FORWARDER_BUILD").is_ok_and(|value| value == "skip");
    let binary = if linux && !skip {
        match build(&out) {
            Ok(binary) => binary,
            Err(message) => {
                eprintln!("{message}");
                eprintln!(
                    "hint: this builds the mesh forwarder (a static Linux binary, `+crt-static`): \
                     it needs the target's static C library (Debian: libc6-dev; Fedora: \
                     glibc-static). Or build with SANDBOX_FORWARDER_BUILD=skip and give sandbox \
                     SANDBOX_FORWARDER=/path/to/static/linux/sandbox-forwarder at run time."
                );
                return ExitCode::FAILURE;
            }
        }
    } else {
        let empty = out.join("sandbox-forwarder.none");
        if let Err(error) = std::fs::write(&empty, b"") {
            eprintln!("writing {}: {error}", empty.display());
            return ExitCode::FAILURE;
        }
        empty
    };
    println!("cargo:rustc-env=SANDBOX_FORWARDER_BIN={}", binary.display());
    ExitCode::SUCCESS
}

/// Compiles the forwarder's library, then its binary against it; returns the binary's path.
fn build(out: &Path) -> Result<PathBuf, String> {
    let source = Path::new(&env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?)
        .join("forwarder/src");
    let library_dir = out.join("forwarder");
    std::fs::create_dir_all(&library_dir)
        .map_err(|error| format!("creating {}: {error}", library_dir.display()))?;
    let binary = out.join("sandbox-forwarder");
    rustc(|command| {
        command
            .args(["--crate-type", "rlib"])
            .arg(source.join("lib.rs"))
            .arg("--out-dir")
            .arg(&library_dir);
    })?;
    let mut library = std::ffi::OsString::from("sandbox_forwarder=");
    library.push(library_dir.join("libsandbox_forwarder.rlib"));
    rustc(|command| {
        command
            .args(["--crate-type", "bin", "-C", "strip=symbols"])
            .arg(source.join("main.rs"))
            .arg("--extern")
            .arg(&library)
            .arg("-o")
            .arg(&binary);
    })?;
    Ok(binary)
}

/// Runs `$RUSTC` with the flags both steps share and what `step` adds; a failure carries the
/// command and everything rustc printed.
fn rustc(step: impl FnOnce(&mut Command)) -> Result<(), String> {
    let target = env::var("TARGET").map_err(|_| "cargo sets TARGET".to_string())?;
    let mut command = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    command
        .args(["--crate-name", "sandbox_forwarder", "--edition", "2021"])
        .args([
            "-C",
            "opt-level=3",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=0",
        ])
        .args(["-C", "target-feature=+crt-static", "--target", &target]);
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        let mut flag = std::ffi::OsString::from("linker=");
        flag.push(linker);
        command.arg("-C").arg(flag);
    }
    step(&mut command);
    let output = command
        .output()
        .map_err(|error| format!("cannot run rustc ({command:?}): {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "compiling the mesh forwarder failed ({}):\n{:?}\n{}",
        output.status,
        command,
        String::from_utf8_lossy(&output.stderr)
    ))
}
