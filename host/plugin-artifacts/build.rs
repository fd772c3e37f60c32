//! Builds the bundled plugins (every folder of `plugins/bundled/`) for `wasm32-wasip2`, writes
//! `artifacts.rs` (their bytes, to embed) into `OUT_DIR`, and copies them to `<target>/plugins/`,
//! the directory a development build loads.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().and_then(Path::parent).unwrap().to_path_buf();
    println!("cargo:rerun-if-changed=build.rs");
    let plugins = sluice_plugin_build::build_folder(&workspace, "plugins/bundled");

    let plugins_dir = sluice_plugin_build::target_root().join("plugins");
    fs::create_dir_all(&plugins_dir).unwrap();
    let mut code = String::from("/// Plugins built into sluice.\npub const BUNDLED: &[BundledPlugin] = &[\n");
    for plugin in &plugins {
        let file_name = format!("{}.wasm", plugin.package);
        fs::copy(&plugin.wasm, plugins_dir.join(&file_name)).unwrap();
        code.push_str(&format!(
            "    BundledPlugin {{ file_name: {file_name:?}, wasm: include_bytes!({:?}) }},\n",
            plugin.wasm.display().to_string()
        ));
    }
    code.push_str("];\n");
    code.push_str(&format!(
        "\n/// Where the build copied the bundled plugins.\npub const PLUGINS_DIR: &str = {:?};\n",
        plugins_dir.display().to_string()
    ));
    fs::write(PathBuf::from(env::var("OUT_DIR").unwrap()).join("artifacts.rs"), code).unwrap();
}
