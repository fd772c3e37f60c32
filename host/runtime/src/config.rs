//! Limits that every plugin call runs under.

use std::time::Duration;

/// Sandbox limits applied to every plugin instance and call.
///
/// The defaults suit batches of a few thousand seed-shaped records; raise them for plugins that
/// handle large documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Most linear memory one instance may grow to, in bytes (default 256 MiB).
    pub max_memory_bytes: usize,
    /// Most linear memory all instances of all plugins may hold together, in bytes (default
    /// 1 GiB): a growth past it fails the call as a memory limit, whatever the instance's own.
    pub max_total_memory_bytes: usize,
    /// `split` calls one source may run at once for the API (default: half the cores, at least
    /// one): the other sources keep the rest of the machine, however many clients hammer one
    /// of them. A request waits for a turn for at most `call_timeout`, then gets 503. (The
    /// stream's `transform` calls are bounded by the source's log partitions instead.)
    pub max_concurrent_calls_per_source: usize,
    /// Deadline of one call (`describe`, `configure`, `split`, `transform`); default 10 s.
    pub call_timeout: Duration,
    /// Most bytes one call may return, counting every value and offset (default 128 MiB).
    pub max_output_bytes: usize,
    /// Largest `.wasm` file that is loaded at all (default 64 MiB).
    pub max_wasm_bytes: u64,
    /// Idle instances kept per source for reuse (default 4).
    pub max_idle_instances: usize,
    /// An instance whose linear memory grew past this (one huge batch) is dropped after its
    /// call instead of being kept idle: Wasm memory never shrinks (default 32 MiB).
    pub max_idle_memory_bytes: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            max_total_memory_bytes: 1 << 30,
            max_concurrent_calls_per_source: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            call_timeout: Duration::from_secs(10),
            max_output_bytes: 128 << 20,
            max_wasm_bytes: 64 << 20,
            max_idle_instances: 4,
            max_idle_memory_bytes: 32 << 20,
        }
    }
}

/// How often the engine's epoch advances; call deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

impl SandboxConfig {
    /// The call deadline in epoch ticks (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}
