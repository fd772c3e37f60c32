//! The shared wasmtime engine, its epoch ticker, the sandboxed linker and the compile cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use crate::cache::CompileCache;
use crate::config::{EPOCH_TICK, SandboxConfig, bytes};
use crate::error::LoadError;
use crate::sandbox::{self, SandboxState};

/// Set this environment variable to any value to name compiled plugin code in `perf` profiles
/// (wasmtime's perf map, `/tmp/perf-<pid>.map`). A diagnostic aid: see docs/performance.md.
pub const PERFMAP_ENV: &str = "SLUICE_PLUGIN_PERFMAP";

/// Everything plugins share: one engine, one linker, the limits, the compiled-code cache.
///
/// Cheap to clone. A background thread advances the engine's epoch every 10 ms so that call
/// deadlines are enforced; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<SandboxState>,
    config: SandboxConfig,
    cache: CompileCache,
    memory: sandbox::MemoryBudget,
}

impl PluginEngine {
    /// An engine with the given limits, caching compiled plugins under `cache_dir` (no cache
    /// when `None`).
    ///
    /// The cache directory must be writable by sluice alone: its files are loaded as native code.
    pub fn new(config: SandboxConfig, cache_dir: Option<PathBuf>) -> Result<Self, LoadError> {
        let mut wasm_config = Config::new();
        wasm_config.wasm_component_model(true);
        wasm_config.epoch_interruption(true);
        wasm_config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        if std::env::var_os(PERFMAP_ENV).is_some() {
            // Names compiled plugin functions in `perf report` (writes /tmp/perf-<pid>.map).
            wasm_config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm_config).map_err(|e| internal("engine", e))?;
        let mut linker = Linker::new(&engine);
        sandbox::link(&mut linker).map_err(|e| internal("linker", e))?;
        let cache = CompileCache::open(cache_dir, &engine, wasm_config)?;
        start_epoch_ticker(&engine);
        let memory = sandbox::MemoryBudget::new(bytes(config.max_total_memory));
        Ok(Self { inner: Arc::new(EngineInner { engine, linker, config, cache, memory }) })
    }

    /// The limits plugin calls run under.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Linear memory all plugin instances hold now, in bytes.
    pub fn memory_in_use(&self) -> usize {
        self.inner.memory.in_use()
    }

    pub(crate) fn memory_budget(&self) -> &sandbox::MemoryBudget {
        &self.inner.memory
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<SandboxState> {
        &self.inner.linker
    }

    pub(crate) fn cache(&self) -> &CompileCache {
        &self.inner.cache
    }
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// Advances the epoch every tick until the engine is gone.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

fn internal(what: &str, error: wasmtime::Error) -> LoadError {
    LoadError::Io { path: PathBuf::from(format!("<{what}>")), source: std::io::Error::other(error.to_string()) }
}
