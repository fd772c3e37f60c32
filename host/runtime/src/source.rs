//! A source: a plugin bound to settings, running batches on a pool of reused instances.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::config::SandboxConfig;
use crate::error::{CallError, LoadError};
use crate::output::{SplitRecords, Transformed};
use crate::plugin::{Deadline, Instance, Plugin};
use crate::registry::PluginRegistry;

/// Which plugin a source runs: a fixed one, or whatever version the registry holds now.
#[derive(Clone)]
enum PluginHandle {
    Fixed(Arc<Plugin>),
    Registry { registry: PluginRegistry, name: String },
}

impl PluginHandle {
    fn current(&self) -> Result<Arc<Plugin>, LoadError> {
        match self {
            Self::Fixed(plugin) => Ok(plugin.clone()),
            Self::Registry { registry, name } => {
                registry.get(name).ok_or_else(|| LoadError::UnknownPlugin(name.clone()))
            }
        }
    }
}

/// A named binding of a plugin and its settings.
///
/// Calls take an idle instance from the pool (or make and configure one), run, and put the
/// instance back; an instance whose call failed is dropped, so the next batch gets a fresh one.
/// When the plugin is replaced in the registry, batches already running finish on the old
/// version and the next batch runs on the new one.
pub struct Source {
    plugin: PluginHandle,
    settings: Vec<(String, String)>,
    idle: Mutex<Vec<Instance>>,
    turns: Turns,
    /// Instances made so far (the first one included).
    instances_made: AtomicU64,
    /// When the source was made: the clock `brief_miss_ms` counts from.
    created: Instant,
    /// When a brief split last ran out of time, in milliseconds since `created` plus one (0:
    /// never): inline splitting is skipped for a while after. An atomic, so the API's inline
    /// path takes no lock to look.
    brief_miss_ms: AtomicU64,
}

/// How long a source whose plugin missed the brief deadline gets no inline splits: each miss
/// interrupts the plugin and costs an instance (for an interpreted plugin, a new interpreter),
/// so a plugin that is slow to split goes straight to a thread that may wait for it.
const BRIEF_MISS_COOLDOWN: Duration = Duration::from_secs(60);

/// How long a call waits for one of its source's turns.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// Not at all (a call on an async thread).
    No,
    /// Up to the sandbox's call timeout (the API: its client gets a 503 after that).
    CallTimeout,
    /// Takes no turn: the stream's `transform` calls, bounded by the source's log partitions
    /// (one call per partition at most), must make progress and have no client waiting.
    Untimed,
}

/// The `split` calls a source may run at once (`SandboxConfig::max_concurrent_calls_per_source`):
/// the API's side, where clients decide how many calls come.
struct Turns {
    limit: usize,
    taken: Mutex<usize>,
    freed: Condvar,
}

/// One call's turn, given back when dropped.
struct Turn<'a>(&'a Turns);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.taken.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}

impl Turns {
    fn new(limit: usize) -> Self {
        Self { limit: limit.max(1), taken: Mutex::new(0), freed: Condvar::new() }
    }

    fn take(&self, wait: Wait, timeout: Duration) -> Option<Turn<'_>> {
        let deadline = Instant::now() + timeout;
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        while *taken >= self.limit {
            taken = match wait {
                Wait::No => return None,
                Wait::Untimed => unreachable!("untimed calls take no turn"),
                Wait::CallTimeout => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.freed.wait_timeout(taken, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
        *taken += 1;
        Some(Turn(self))
    }
}

/// Why a source could not run a batch: its plugin is gone, or the call failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The plugin is no longer loaded.
    #[error(transparent)]
    Unloaded(#[from] LoadError),
    /// The call failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// A call's output together with the plugin version that produced it.
#[derive(Debug)]
pub struct Handled<T> {
    /// The plugin that ran the call (for provenance: name, version, digest).
    pub plugin: Arc<Plugin>,
    /// The validated output.
    pub output: T,
}

impl Source {
    /// A source running one fixed plugin. Checks the settings now: unknown keys, or values the
    /// plugin refuses, are an error here rather than on the first batch.
    pub fn new(plugin: Arc<Plugin>, settings: Vec<(String, String)>) -> Result<Self, SourceError> {
        Self::with_handle(PluginHandle::Fixed(plugin), settings)
    }

    /// A source running whatever version of plugin `name` the registry holds at each batch.
    pub fn from_registry(
        registry: &PluginRegistry,
        name: &str,
        settings: Vec<(String, String)>,
    ) -> Result<Self, SourceError> {
        let handle = PluginHandle::Registry { registry: registry.clone(), name: name.to_string() };
        Self::with_handle(handle, settings)
    }

    fn with_handle(plugin: PluginHandle, settings: Vec<(String, String)>) -> Result<Self, SourceError> {
        let current = plugin.current()?;
        check_setting_names(&current, &settings)?;
        let instance = current.instantiate(&settings)?;
        let turns = Turns::new(current.engine().config().concurrent_calls_per_source());
        Ok(Self {
            plugin,
            settings,
            idle: Mutex::new(vec![instance]),
            turns,
            instances_made: AtomicU64::new(1),
            created: Instant::now(),
            brief_miss_ms: AtomicU64::new(0),
        })
    }

    /// How many instances of its plugin this source has made (a new one after each failed call,
    /// each version change, and each instance not kept idle).
    pub fn instances_made(&self) -> u64 {
        self.instances_made.load(Ordering::Relaxed)
    }

    /// The plugin the next batch will run on.
    pub fn plugin(&self) -> Result<Arc<Plugin>, LoadError> {
        self.plugin.current()
    }

    /// Transforms `batch` into rows per table and rejections.
    pub fn transform(&self, batch: &Batch) -> Result<Handled<Transformed>, SourceError> {
        self.run(batch, Wait::Untimed, |instance, plugin| instance.transform(plugin, batch))
    }

    /// Splits `batch` into single canonical records (the API's edge validation).
    pub fn split(&self, batch: &Batch) -> Result<Handled<SplitRecords>, SourceError> {
        self.run(batch, Wait::CallTimeout, |instance, plugin| instance.split(plugin, batch, Deadline::Configured))
    }

    /// Splits `batch` like [`split`](Self::split), but interrupts the plugin after 10–20 ms
    /// instead of at the sandbox's call timeout: for small batches split right on an async
    /// thread, which a slow or stuck plugin must not hold. `Ok(None)` when the plugin ran out of
    /// that time: nothing was split, and [`split`](Self::split) (on a thread that may block) can
    /// try again under the full deadline. Also `Ok(None)` when the source has no free turn, and,
    /// without calling the plugin, for a minute after a brief split ran out of time.
    pub fn split_briefly(&self, batch: &Batch) -> Result<Option<Handled<SplitRecords>>, SourceError> {
        let now_ms = |source: &Self| source.created.elapsed().as_millis() as u64 + 1;
        let missed = self.brief_miss_ms.load(Ordering::Relaxed);
        if missed != 0 && now_ms(self) - missed < BRIEF_MISS_COOLDOWN.as_millis() as u64 {
            return Ok(None);
        }
        // On an async thread WASI's blocking streams cannot be served (wasmtime-wasi's sync
        // bindings start a runtime, and tokio refuses that within one): a plugin that writes to
        // its stdout or stderr (a Rust panic message, a Python traceback) panics the call. The
        // instance goes with the unwinding (it was taken from the idle ones), and the body is
        // split again on the blocking pool, where the output is captured as always.
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run(batch, Wait::No, |instance, plugin| instance.split(plugin, batch, Deadline::Brief))
        }));
        let Ok(call) = call else {
            self.brief_miss_ms.store(now_ms(self), Ordering::Relaxed);
            return Ok(None);
        };
        match call {
            Err(SourceError::Call(CallError::Timeout { .. })) => {
                self.brief_miss_ms.store(now_ms(self), Ordering::Relaxed);
                Ok(None)
            }
            Err(SourceError::Call(CallError::Busy { .. })) => Ok(None),
            other => other.map(Some),
        }
    }

    fn run<T>(
        &self,
        batch: &Batch,
        wait: Wait,
        call: impl FnOnce(&mut Instance, &Plugin) -> Result<T, CallError>,
    ) -> Result<Handled<T>, SourceError> {
        let plugin = self.plugin.current()?;
        let id = plugin.id();
        if !plugin.manifest().accepts(batch.content_type()) {
            return Err(CallError::UnsupportedContentType {
                plugin: id,
                content_type: batch.content_type().to_string(),
                accepted: plugin.manifest().content_types.join(", "),
            }
            .into());
        }
        batch.check().map_err(|reason| CallError::InvalidBatch { plugin: id.clone(), reason })?;
        let config = plugin.engine().config();
        let _turn = match wait {
            Wait::Untimed => None,
            wait => Some(
                self.turns
                    .take(wait, config.call_timeout)
                    .ok_or(CallError::Busy { plugin: id, limit: self.turns.limit })?,
            ),
        };
        let mut instance = match self.take_idle(plugin.digest()) {
            Some(instance) => instance,
            None => {
                self.instances_made.fetch_add(1, Ordering::Relaxed);
                plugin.instantiate(&self.settings)?
            }
        };
        let output = call(&mut instance, &plugin)?;
        self.put_idle(instance, plugin.engine().config());
        Ok(Handled { plugin, output })
    }

    fn take_idle(&self, digest: &str) -> Option<Instance> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Instances of a replaced version are dropped here.
        idle.retain(|instance| instance.digest() == digest);
        idle.pop()
    }

    fn put_idle(&self, instance: Instance, config: &SandboxConfig) {
        if instance.grown_bytes() > crate::config::bytes(config.max_idle_memory) {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < config.max_idle_instances {
            idle.push(instance);
        }
    }
}

fn check_setting_names(plugin: &Plugin, settings: &[(String, String)]) -> Result<(), CallError> {
    let known = &plugin.manifest().settings;
    for (key, _) in settings {
        if !known.iter().any(|s| &s.name == key) {
            let names: Vec<&str> = known.iter().map(|s| s.name.as_str()).collect();
            let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            return Err(CallError::Configure {
                plugin: plugin.id(),
                message: format!("unknown setting `{}` (known settings: {known})", key.escape_debug()),
            });
        }
    }
    Ok(())
}
