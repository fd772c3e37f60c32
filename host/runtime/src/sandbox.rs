//! The sandbox every plugin instance runs in: what it may import, what those imports can reach,
//! and how its memory is capped.
//!
//! The standard libraries of the guest languages (Rust's `std` on `wasm32-wasip2`, CPython built
//! by componentize-py, StarlingMonkey built by componentize-js) import a set of WASI interfaces
//! even when a plugin never touches files or the network. The host links those interfaces but
//! gives them nothing to reach: no preopened directory, no environment variable, no argument,
//! empty stdin, stdout/stderr captured into a small buffer (never the host's), a wall clock stuck
//! at the epoch and a monotonic clock stuck at zero, a deterministic random source, and sockets
//! that refuse every address and every name lookup (`access-denied`). Every other import — HTTP,
//! anything outside WASI — is refused when the plugin loads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// How much of a plugin's stdout/stderr is kept (to explain traps); the rest is dropped.
const CAPTURED_OUTPUT_BYTES: usize = 4096;

/// WASI interfaces (package/interface, any version) a plugin may import. Each is neutered as
/// described in the module documentation.
const GRANTED_IMPORTS: &[&str] = &[
    // The contract's own type definitions (no functions).
    "sluice:plugin/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    // Linked with TCP, UDP and name lookup switched off: creating a socket or resolving a name
    // fails with `access-denied`. CPython's socket module imports these unconditionally.
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Whether the sandbox grants the import `name` (e.g. `wasi:io/streams@0.2.3`).
pub(crate) fn is_granted(name: &str) -> bool {
    let unversioned = name.split('@').next().unwrap_or(name);
    GRANTED_IMPORTS.contains(&unversioned)
}

/// Lines a guest language's runtime prints after the line that explains a trap, skipped when
/// picking the line to show: componentize-py prints the Python exception, then panics in its own
/// runtime (`thread '…' panicked at runtime/src/…:`) with the first message; componentize-js's
/// engine (StarlingMonkey) prints the exception's stack under `Stack:` and the second as it aborts.
const GUEST_RUNTIME_LINES: &[&str] =
    &["Python function threw an unexpected exception", "Redirecting call to abort() to mozalloc_abort", "Stack:"];

/// Whether `line` is one a guest language's runtime prints after the line that explains a trap:
/// one of [`GUEST_RUNTIME_LINES`], componentize-py's runtime panicking, or a frame of the stack
/// componentize-js prints after an exception (`function@file.js:231:21`).
fn is_guest_runtime_line(line: &str) -> bool {
    GUEST_RUNTIME_LINES.contains(&line)
        || (line.starts_with("thread '") && line.contains("panicked at runtime/"))
        || is_javascript_frame(line)
}

/// `function@file:line:column`, SpiderMonkey's form of a stack frame (the function may be empty).
fn is_javascript_frame(line: &str) -> bool {
    let Some((function, place)) = line.split_once('@') else { return false };
    let mut numbers = place.rsplitn(3, ':');
    let (column, row) = (numbers.next().unwrap_or(""), numbers.next().unwrap_or(""));
    !function.contains(char::is_whitespace)
        && numbers.next().is_some_and(|file| !file.is_empty())
        && [column, row].iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The data of one plugin instance's store.
pub(crate) struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryCap,
    output: MemoryOutputPipe,
}

impl SandboxState {
    /// A fresh sandbox whose memory may grow to `max_memory_bytes`, within what `budget` (shared
    /// by every instance) has left.
    pub(crate) fn new(max_memory_bytes: usize, budget: MemoryBudget) -> Self {
        let output = MemoryOutputPipe::new(CAPTURED_OUTPUT_BYTES);
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap { max_bytes: max_memory_bytes, current_bytes: 0, refused: None, budget },
            output,
        }
    }

    /// The limiter to install with `Store::limiter`.
    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    /// Linear memory the instance has grown to, in bytes (Wasm memory never shrinks).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.limiter.current_bytes
    }

    /// Which cap refused a memory growth since the store was created, if one did.
    pub(crate) fn memory_refused(&self) -> Option<Refusal> {
        self.limiter.refused
    }

    /// The last line the plugin printed (a panic message, typically), if any.
    pub(crate) fn last_output_line(&self) -> Option<String> {
        let bytes = self.output.contents();
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !(l.is_empty() || l.starts_with("note:") || is_guest_runtime_line(l)))
            .map(|l| l.chars().take(300).collect())
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Adds the granted WASI interfaces to `linker`.
pub(crate) fn link(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)
}

/// Linear memory held by every plugin instance together, against its cap. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBudget {
    in_use: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl MemoryBudget {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self { in_use: Arc::default(), max_bytes }
    }

    /// Bytes held now.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::SeqCst)
    }

    /// Takes `bytes` if they fit under the cap.
    fn take(&self, bytes: usize) -> bool {
        self.in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.max_bytes)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.in_use.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// Which cap refused a memory growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The instance's own cap.
    Instance,
    /// The cap on all instances together.
    Host,
}

/// Caps linear memory, per instance and against the host-wide budget, and remembers when it
/// refused a growth, so that the resulting trap is reported as a memory limit rather than a
/// generic trap. Gives its memory back to the budget when the store is dropped.
struct MemoryCap {
    max_bytes: usize,
    current_bytes: usize,
    refused: Option<Refusal>,
    budget: MemoryBudget,
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        self.budget.give_back(self.current_bytes);
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(Refusal::Instance);
            return Ok(false);
        }
        if !self.budget.take(desired.saturating_sub(current)) {
            self.refused = Some(Refusal::Host);
            return Ok(false);
        }
        self.current_bytes += desired.saturating_sub(current);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// A clock that never moves: plugins get no time source unless one is granted.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javascript_stack_frames_are_not_the_line_that_explains_a_trap() {
        assert!(is_javascript_frame("export_source_0_2_0$split@/tmp/75e7/sources/initializer.js:231:21"));
        assert!(is_javascript_frame("@target/app.js:12:3"));
        assert!(!is_javascript_frame("split: TypeError: row.nothing is undefined (at check@target/app.js:12:3)"));
        assert!(!is_javascript_frame("panicked at src/lib.rs:10:5:"));
        assert!(!is_javascript_frame("a@b"));
    }

    #[test]
    fn only_neutered_wasi_interfaces_are_granted() {
        assert!(is_granted("wasi:io/streams@0.2.3"));
        assert!(is_granted("wasi:cli/environment@0.2.0"));
        assert!(is_granted("wasi:sockets/tcp@0.2.9"));
        assert!(!is_granted("wasi:http/outgoing-handler@0.2.3"));
        assert!(!is_granted("wasi:sockets/tcp-extra@0.2.3"));
        assert!(!is_granted("sluice:evil/exfiltrate"));
    }
}
