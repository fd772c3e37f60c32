//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_runtime::{BundledPlugin, Plugin, PluginEngine, SandboxConfig};

/// Limits small enough that hostile plugins hit them quickly.
pub fn tight_config() -> SandboxConfig {
    SandboxConfig {
        max_memory: bytesize::ByteSize::mib(32),
        call_timeout: Duration::from_millis(300),
        max_output: bytesize::ByteSize::mib(1),
        ..SandboxConfig::default()
    }
}

/// An engine without a compile cache.
pub fn engine(config: SandboxConfig) -> PluginEngine {
    PluginEngine::new(config, None).expect("engine")
}

/// The bundled plugins as the runtime takes them.
pub fn bundled() -> Vec<BundledPlugin> {
    sluice_plugin_artifacts::BUNDLED.to_vec()
}

/// Loads a plugin file.
pub fn load(engine: &PluginEngine, path: &str) -> Arc<Plugin> {
    Arc::new(Plugin::load_file(engine, Path::new(path)).expect("plugin loads"))
}

/// Loads a bundled plugin by file name.
pub fn load_bundled(engine: &PluginEngine, file_name: &str) -> Arc<Plugin> {
    let bundled = bundled().into_iter().find(|b| b.file_name == file_name).expect("bundled plugin");
    Arc::new(
        Plugin::load(engine, sluice_runtime::PluginOrigin::Bundled(bundled.file_name.into()), bundled.wasm)
            .expect("bundled plugin loads"),
    )
}
