//! Limits that every plugin call runs under.

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// `[plugins]`: where plugins come from and the sandbox limits every instance and call runs
/// under.
///
/// The defaults suit batches of a few thousand seed-shaped records; raise them for plugins that
/// handle large documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Directory of plugin files loaded beside the bundled ones (default: `DATA_DIR/plugins`,
    /// or `--plugins-dir`).
    pub dir: Option<PathBuf>,
    /// Most linear memory one instance may grow to (default 256 MiB).
    pub max_memory: ByteSize,
    /// Most linear memory all instances of all plugins may hold together (default 1 GiB): a
    /// growth past it fails the call as a memory limit, whatever the instance's own.
    pub max_total_memory: ByteSize,
    /// `split` calls one source may run at once for the API (0, the default: half the cores, at
    /// least one): the other sources keep the rest of the machine, however many clients hammer
    /// one of them. A request waits for a turn for at most `call_timeout`, then gets 503. (The
    /// stream's `transform` calls are bounded by the source's log partitions instead.)
    pub max_concurrent_calls_per_source: usize,
    /// Deadline of one call (`describe`, `configure`, `split`, `transform`); default 10 s.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Most one call may return, counting every value and offset (default 128 MiB).
    pub max_output: ByteSize,
    /// Largest `.wasm` file that is loaded at all (default 64 MiB).
    pub max_wasm: ByteSize,
    /// Idle instances kept per source for reuse (default 4).
    pub max_idle_instances: usize,
    /// An instance whose linear memory grew by more than this since it was configured (one huge
    /// batch) is dropped after its call instead of being kept idle: Wasm memory never shrinks.
    /// Counted from the configured instance's own size, so an interpreter's large but steady
    /// heap (a Python plugin starts at tens of MiB) does not make every call start a new
    /// instance (default 32 MiB).
    pub max_idle_memory: ByteSize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_memory: ByteSize::mib(256),
            max_total_memory: ByteSize::gib(1),
            max_concurrent_calls_per_source: 0,
            call_timeout: Duration::from_secs(10),
            max_output: ByteSize::mib(128),
            max_wasm: ByteSize::mib(64),
            max_idle_instances: 4,
            max_idle_memory: ByteSize::mib(32),
        }
    }
}

/// How often the engine's epoch advances; call deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

impl SandboxConfig {
    /// Checks what the types cannot: limits no call could meet (a zero size, a deadline shorter
    /// than the deadline's resolution, a total below one instance's).
    pub fn check(&self) -> Result<(), sluice_config::ValueError> {
        sluice_config::check(
            "plugins",
            [
                ("max_memory", "at least 1 MiB", self.max_memory < ByteSize::mib(1)),
                ("max_total_memory", "at least plugins.max_memory", self.max_total_memory < self.max_memory),
                ("call_timeout", "at least 10ms (the resolution of call deadlines)", self.call_timeout < EPOCH_TICK),
                ("max_output", "at least 1 KiB", self.max_output < ByteSize::kib(1)),
                ("max_wasm", "at least 1 KiB", self.max_wasm < ByteSize::kib(1)),
            ],
        )
    }

    /// `split` calls one source may run at once: `max_concurrent_calls_per_source`, or half the
    /// cores (at least one) when it is 0.
    pub fn concurrent_calls_per_source(&self) -> usize {
        match self.max_concurrent_calls_per_source {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        }
    }

    /// The call deadline in epoch ticks (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// `size` in bytes, as the address space counts them (saturating on 32-bit hosts).
pub(crate) fn bytes(size: ByteSize) -> usize {
    usize::try_from(size.as_u64()).unwrap_or(usize::MAX)
}
