//! Builds the plugin crates of one folder (`plugins/bundled`, `plugins/testing`) for
//! `wasm32-wasip2`, for the build scripts of `sluice-plugin-artifacts` and `sluice-test-plugins`.
//!
//! The plugins are whatever subfolders hold a `Cargo.toml`: adding one is adding a folder. They
//! are built with one nested `cargo build --profile plugin` into `<target>/plugin-build`, shared
//! by every host profile, so a debug and a release build of the host compile them once.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target plugins are compiled for.
pub const WASM_TARGET: &str = "wasm32-wasip2";
/// The cargo profile plugins are always compiled with, whatever profile builds the host.
pub const PROFILE: &str = "plugin";

/// One built plugin.
#[derive(Debug, Clone)]
pub struct Built {
    /// Its folder's name (`lab_results`, `endless-loop`).
    pub folder: String,
    /// Its Cargo package name.
    pub package: String,
    /// The component file.
    pub wasm: PathBuf,
}

/// Where the build script's target directory is: `OUT_DIR` is `<target>/<profile>/build/<pkg>-<hash>/out`.
pub fn target_root() -> PathBuf {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    out_dir.ancestors().nth(4).expect("OUT_DIR has the layout cargo gives it").to_path_buf()
}

/// Builds every plugin under `workspace/folder` and returns them sorted by folder name. Tells
/// cargo to run the build script again when a plugin, the SDK, the contract or the WIT changes.
///
/// # Panics
/// When the folder cannot be read or the nested build fails (a build script's way to fail).
pub fn build_folder(workspace: &Path, folder: &str) -> Vec<Built> {
    let dir = workspace.join(folder);
    for watched in
        [dir.clone(), workspace.join("plugins/sdk"), workspace.join("plugins/contract"), workspace.join("wit")]
    {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    let mut plugins = Vec::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("listing a plugin folder").path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let package = package_name(&manifest);
        let folder = path.file_name().unwrap().to_string_lossy().into_owned();
        plugins.push(Built { folder, package, wasm: PathBuf::new() });
    }
    plugins.sort_by(|a, b| a.folder.cmp(&b.folder));
    if plugins.is_empty() {
        return plugins;
    }

    ensure_wasm_target();
    let build_dir = target_root().join("plugin-build");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--target", WASM_TARGET, "--profile", PROFILE, "--target-dir"])
        .arg(&build_dir);
    for plugin in &plugins {
        command.args(["-p", &plugin.package]);
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
    assert!(status.success(), "building the plugins in {folder} for {WASM_TARGET} failed");

    let wasm_dir = build_dir.join(WASM_TARGET).join(PROFILE);
    for plugin in &mut plugins {
        plugin.wasm = wasm_dir.join(format!("{}.wasm", plugin.package.replace('-', "_")));
    }
    plugins
}

/// The `name` of a manifest's `[package]` table.
fn package_name(manifest: &Path) -> String {
    let text = fs::read_to_string(manifest).unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().trim_start_matches('=').trim();
            return value.trim_matches('"').to_string();
        }
    }
    panic!("{} has no [package] name", manifest.display());
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
