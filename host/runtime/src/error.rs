//! Typed errors of loading plugins and calling them.

use std::path::PathBuf;
use std::time::Duration;

/// Why a file could not become a loaded plugin. The other plugins are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than `SandboxConfig::max_wasm`.
    #[error("plugin {path} is {bytes} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The plugin file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The file is not a valid WebAssembly component.
    #[error("plugin {path} is not a valid WebAssembly component: {message}")]
    Compile {
        /// The plugin file.
        path: PathBuf,
        /// What wasmtime reported.
        message: String,
    },
    /// The component exports no `sluice:plugin/source` interface at all.
    #[error(
        "plugin {path} is not a sluice plugin: it exports no `sluice:plugin/source` interface (exports: {exports})"
    )]
    NotAPlugin {
        /// The plugin file.
        path: PathBuf,
        /// What it exports instead, comma-separated.
        exports: String,
    },
    /// The component was built against a contract version this host does not support.
    #[error(
        "plugin {path} was built for contract sluice:plugin@{found}; this sluice supports {supported}. Rebuild the plugin against a supported version of wit/plugin.wit"
    )]
    UnsupportedContract {
        /// The plugin file.
        path: PathBuf,
        /// The version the plugin was built against.
        found: String,
        /// The versions this host supports, comma-separated.
        supported: String,
    },
    /// The component imports an interface the sandbox does not grant.
    #[error("plugin {path} imports `{import}`, which sluice does not grant to plugins")]
    UngrantedImport {
        /// The plugin file.
        path: PathBuf,
        /// The import name as the component spells it.
        import: String,
    },
    /// Linking or describing the plugin failed.
    #[error("plugin {path} could not be started: {source}")]
    Describe {
        /// The plugin file.
        path: PathBuf,
        /// The failed call.
        #[source]
        source: CallError,
    },
    /// The manifest returned by `describe` breaks a rule of the contract.
    #[error("plugin {path} has an invalid manifest: {reason}")]
    InvalidManifest {
        /// The plugin file.
        path: PathBuf,
        /// Which rule is broken.
        reason: String,
    },
    /// Two files declare the same plugin name.
    #[error("plugin {path} declares name `{name}`, already provided by {other}")]
    DuplicateName {
        /// The plugin file that lost.
        path: PathBuf,
        /// The contested name.
        name: String,
        /// Where the loaded plugin of that name came from.
        other: String,
    },
    /// The wasmtime engine or linker could not be set up (a sluice bug or an unsupported host).
    #[error("cannot set up the plugin {what}: {message}")]
    Engine {
        /// `engine` or `linker`.
        what: &'static str,
        /// What wasmtime reported.
        message: String,
    },
    /// The host refused the version (see `registry::Admission`).
    #[error("plugin {path} was not loaded: {reason}")]
    NotAdmitted {
        /// The file.
        path: PathBuf,
        /// Why the host refused it (the previous version, if any, keeps running).
        reason: String,
    },
    /// No loaded plugin has this name.
    #[error("no plugin named `{0}` is loaded")]
    UnknownPlugin(String),
    /// The compiled-code cache or plugin directory failed.
    #[error("plugin directory or cache error at {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why one call into a plugin failed. The instance is discarded; the next call gets a fresh one.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline and was interrupted.
    #[error("plugin {plugin} timed out: the call ran longer than {limit:?}")]
    Timeout {
        /// `name@version`.
        plugin: String,
        /// The configured deadline.
        limit: Duration,
    },
    /// The instance tried to grow its memory past the cap.
    #[error("plugin {plugin} exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// `name@version`.
        plugin: String,
        /// The configured cap.
        limit: usize,
    },
    /// The memory all plugin instances hold together would have passed its cap (other calls
    /// hold it now): the call may succeed later.
    #[error("plugin {plugin} needed memory while all plugins together held their limit of {limit} bytes")]
    HostMemoryLimit {
        /// `name@version`.
        plugin: String,
        /// The configured cap on all instances.
        limit: usize,
    },
    /// The source already runs as many calls as it may at once, and none finished in time.
    #[error("plugin {plugin} is busy: {limit} calls already run for its source")]
    Busy {
        /// `name@version`.
        plugin: String,
        /// Calls one source may run at once.
        limit: usize,
    },
    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access...).
    #[error("plugin {plugin} trapped: {message}")]
    Trap {
        /// `name@version`.
        plugin: String,
        /// The trap, and the plugin's panic message when it printed one.
        message: String,
    },
    /// The result is larger than `SandboxConfig::max_output`.
    #[error("plugin {plugin} returned {bytes} bytes, over the limit of {limit} bytes")]
    OutputTooLarge {
        /// `name@version`.
        plugin: String,
        /// Size of the result.
        bytes: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The result breaks the contract (wrong table, column type, row count...).
    #[error("plugin {plugin} returned invalid output: {reason}")]
    InvalidOutput {
        /// `name@version`.
        plugin: String,
        /// Which rule is broken.
        reason: String,
    },
    /// The plugin refused its settings.
    #[error("plugin {plugin} rejected its settings: {message}")]
    Configure {
        /// `name@version`.
        plugin: String,
        /// The plugin's explanation.
        message: String,
    },
    /// The batch handed to the plugin is malformed (a host bug or bad caller input).
    #[error("invalid batch for plugin {plugin}: {reason}")]
    InvalidBatch {
        /// `name@version`.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// The plugin does not accept this content type.
    #[error("plugin {plugin} does not accept content type `{content_type}` (it accepts: {accepted})")]
    UnsupportedContentType {
        /// `name@version`.
        plugin: String,
        /// The content type given.
        content_type: String,
        /// The content types the plugin accepts, comma-separated.
        accepted: String,
    },
    /// Instantiation failed for another reason.
    #[error("plugin {plugin} could not be instantiated: {message}")]
    Instantiate {
        /// `name@version`.
        plugin: String,
        /// What wasmtime reported.
        message: String,
    },
}

/// A wasmtime error and its causes on one line (wasmparser prints some values over several
/// lines, such as the magic bytes it expected), for a log line or a listed failure.
pub(crate) fn one_line(error: &wasmtime::Error) -> String {
    format!("{error:#}").split_whitespace().collect::<Vec<_>>().join(" ")
}
