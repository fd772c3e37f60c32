//! Builds the test plugins (every folder of `plugins/testing/`) for `wasm32-wasip2` and writes
//! one path constant per plugin into `OUT_DIR/test_plugins.rs`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().and_then(Path::parent).unwrap().to_path_buf();
    println!("cargo:rerun-if-changed=build.rs");
    let mut code = String::new();
    for plugin in sluice_plugin_build::build_folder(&workspace, "plugins/testing") {
        let constant = plugin.folder.replace('-', "_").to_uppercase();
        code.push_str(&format!(
            "/// `plugins/testing/{}`, compiled.\npub const {constant}: &str = {:?};\n",
            plugin.folder,
            plugin.wasm.display().to_string()
        ));
    }
    fs::write(PathBuf::from(env::var("OUT_DIR").unwrap()).join("test_plugins.rs"), code).unwrap();
}
