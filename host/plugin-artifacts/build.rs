//! Builds every plugin under `plugins/` for `wasm32-wasip2` with one nested `cargo build`, then
//! writes `artifacts.rs` (bundled plugin bytes and test plugin paths) into `OUT_DIR` and copies
//! the bundled plugins to `<target>/plugins/`, the directory a development build loads.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "plugin";

/// Plugins shipped inside the sluice binary: (package, constant name).
const BUNDLED: &[&str] = &["patients", "admissions", "lab_results"];

/// Test plugins: package names; exposed as path constants in `testing`.
const TESTING: &[&str] = &[
    "test-endless-loop",
    "test-memory-bomb",
    "test-panics",
    "test-oversized-output",
    "test-net-access",
    "test-future-contract",
    "test-swap-v1",
    "test-swap-v2",
    "test-poison",
    "test-drops-records",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().and_then(Path::parent).unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out.
    let target_root = out_dir.ancestors().nth(4).unwrap().to_path_buf();
    let build_dir = target_root.join("plugin-build");

    println!("cargo:rerun-if-changed={}", workspace.join("plugins").display());
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!("cargo:rerun-if-changed=build.rs");

    ensure_wasm_target();

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--target", WASM_TARGET, "--profile", PROFILE, "--target-dir"])
        .arg(&build_dir);
    for package in BUNDLED.iter().chain(TESTING) {
        command.args(["-p", package]);
    }
    // The outer build's flags and wrappers (coverage, clippy) are for the host, not for Wasm.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET"]
    {
        command.env_remove(var);
    }
    // Wasm SIMD (on by default in wasmtime): the SDK scans JSON strings 16 bytes at a time.
    command.env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", "-C target-feature=+simd128");
    let status = command.status().expect("running cargo to build the plugins");
    assert!(status.success(), "building the plugins for {WASM_TARGET} failed");

    let wasm_dir = build_dir.join(WASM_TARGET).join(PROFILE);
    let plugins_dir = target_root.join("plugins");
    fs::create_dir_all(&plugins_dir).unwrap();
    let mut code = String::from("/// Plugins built into sluice.\npub const BUNDLED: &[BundledPlugin] = &[\n");
    for package in BUNDLED {
        let file = wasm_dir.join(format!("{}.wasm", package.replace('-', "_")));
        let file_name = format!("{package}.wasm");
        fs::copy(&file, plugins_dir.join(&file_name)).unwrap();
        code.push_str(&format!(
            "    BundledPlugin {{ file_name: {file_name:?}, wasm: include_bytes!({:?}) }},\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n\n/// Paths of the test plugins.\npub mod testing {\n");
    for package in TESTING {
        let file = wasm_dir.join(format!("{}.wasm", package.replace('-', "_")));
        let constant = package.trim_start_matches("test-").replace('-', "_").to_uppercase();
        code.push_str(&format!(
            "    /// `plugins/testing/{}`.\n    pub const {constant}: &str = {:?};\n",
            package.trim_start_matches("test-"),
            file.display().to_string()
        ));
    }
    code.push_str("}\n");
    code.push_str(&format!(
        "\n/// Where the build copied the bundled plugins.\npub const PLUGINS_DIR: &str = {:?};\n",
        plugins_dir.display().to_string()
    ));
    fs::write(out_dir.join("artifacts.rs"), code).unwrap();
}

/// Installs the Wasm target when rustup manages the toolchain and it is missing.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if Path::new(&sysroot).join("lib/rustlib").join(WASM_TARGET).exists() {
        return;
    }
    let status = Command::new("rustup").args(["target", "add", WASM_TARGET]).status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "the {WASM_TARGET} target is missing and `rustup target add {WASM_TARGET}` failed; install it and build again"
    );
}
