//! One loaded plugin and the instances made from it.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Store;

use crate::batch::Batch;
use crate::bindings::{Guest, GuestPre};
use crate::config::bytes;
use crate::engine::PluginEngine;
use crate::error::{CallError, LoadError};
use crate::output::{self, SplitRecords, Transformed};
use crate::sandbox::{self, SandboxState};
use sluice_contract::Manifest;

/// Contract versions (`sluice:plugin@X`) this host loads plugins for, oldest first; their WIT
/// texts are [`CONTRACT_WIT`](crate::CONTRACT_WIT).
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0", "0.2.0"];

/// The interface a plugin exports, without its version.
const SOURCE_INTERFACE: &str = "sluice:plugin/source";

/// Where a plugin was loaded from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PluginOrigin {
    /// A `.wasm` file.
    File(PathBuf),
    /// Built into the sluice binary under this file name.
    Bundled(String),
}

impl PluginOrigin {
    /// A path-like name for messages (`bundled:patients.wasm` for bundled plugins).
    pub fn display_path(&self) -> PathBuf {
        match self {
            Self::File(path) => path.clone(),
            Self::Bundled(name) => PathBuf::from(format!("bundled:{name}")),
        }
    }
}

impl fmt::Display for PluginOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.display_path().display())
    }
}

/// A compiled, linked and described plugin. Instances are made from it on demand.
pub struct Plugin {
    engine: PluginEngine,
    pre: GuestPre,
    manifest: Manifest,
    digest: String,
    origin: PluginOrigin,
    contract: String,
    from_cache: bool,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.manifest.id())
            .field("digest", &self.digest)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Loads a plugin from a file.
    pub fn load_file(engine: &PluginEngine, path: &Path) -> Result<Self, LoadError> {
        let limit = engine.config().max_wasm.as_u64();
        let read_error = |source| LoadError::Read { path: path.to_path_buf(), source };
        let size = std::fs::metadata(path).map_err(read_error)?.len();
        if size > limit {
            return Err(LoadError::TooLarge { path: path.to_path_buf(), bytes: size, limit });
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        Self::load(engine, PluginOrigin::File(path.to_path_buf()), &bytes)
    }

    /// Loads a plugin from bytes: checks size, contract version and imports, compiles (or takes
    /// the compiled code from the cache), links, then calls `describe` in the sandbox.
    pub fn load(engine: &PluginEngine, origin: PluginOrigin, wasm: &[u8]) -> Result<Self, LoadError> {
        let path = origin.display_path();
        let limit = engine.config().max_wasm.as_u64();
        if wasm.len() as u64 > limit {
            return Err(LoadError::TooLarge { path, bytes: wasm.len() as u64, limit });
        }
        let digest = hex::encode(Sha256::digest(wasm));
        let (component, from_cache) = engine.cache().load_or_compile(engine.engine(), &path, &digest, wasm)?;
        let component_type = component.component_type();

        let exports: Vec<String> = component_type.exports(engine.engine()).map(|(name, _)| name.to_string()).collect();
        let contract = exports
            .iter()
            .find_map(|name| name.strip_prefix(SOURCE_INTERFACE)?.strip_prefix('@').map(str::to_string))
            .ok_or_else(|| LoadError::NotAPlugin { path: path.clone(), exports: exports.join(", ") })?;
        if !SUPPORTED_CONTRACTS.contains(&contract.as_str()) {
            return Err(LoadError::UnsupportedContract {
                path,
                found: contract,
                supported: SUPPORTED_CONTRACTS
                    .iter()
                    .map(|v| format!("sluice:plugin@{v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        for (import, _) in component_type.imports(engine.engine()) {
            if !sandbox::is_granted(import) {
                return Err(LoadError::UngrantedImport { path, import: import.to_string() });
            }
        }

        let instance_pre = engine
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Compile { path: path.clone(), message: crate::error::one_line(&e) })?;
        let pre = GuestPre::new(&contract, instance_pre)
            .map_err(|e| LoadError::Compile { path: path.clone(), message: crate::error::one_line(&e) })?;

        let placeholder = format!("{}", origin);
        let mut instance = Instance::new(engine, &pre, &digest, &placeholder)?;
        let described = instance
            .call(&placeholder, engine, Deadline::Configured, |store, bindings| bindings.describe(store))
            .map_err(|source| LoadError::Describe { path: path.clone(), source })?;
        let manifest =
            crate::manifest::from_wit(described).map_err(|reason| LoadError::InvalidManifest { path, reason })?;
        Ok(Self { engine: engine.clone(), pre, manifest, digest, origin, contract, from_cache })
    }

    /// What the plugin declares.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        self.manifest.id()
    }

    /// Hex SHA-256 of the `.wasm` bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Where the plugin came from.
    pub fn origin(&self) -> &PluginOrigin {
        &self.origin
    }

    /// The contract version it was built against (`0.1.0`, `0.2.0`).
    pub fn contract(&self) -> &str {
        &self.contract
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    pub(crate) fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// A fresh instance, configured with `settings` plus the manifest's default for every
    /// declared setting they leave out (the host fills defaults, so no guest language's SDK has
    /// to).
    pub(crate) fn instantiate(&self, settings: &[(String, String)]) -> Result<Instance, CallError> {
        let id = self.id();
        let mut instance = Instance::new(&self.engine, &self.pre, &self.digest, &id)
            .map_err(|e| CallError::Instantiate { plugin: id.clone(), message: e.to_string() })?;
        let settings = with_defaults(&self.manifest, settings);
        let configured = instance
            .call(&id, &self.engine, Deadline::Configured, |store, bindings| bindings.configure(store, &settings))?;
        configured.map_err(|message| CallError::Configure { plugin: id, message })?;
        instance.configured_bytes = instance.memory_bytes();
        Ok(instance)
    }
}

/// `given` followed by `(name, default)` for each declared setting with a default that `given`
/// does not set, in manifest order.
fn with_defaults(manifest: &Manifest, given: &[(String, String)]) -> Vec<(String, String)> {
    let mut settings = given.to_vec();
    for setting in &manifest.settings {
        if let Some(default) = &setting.default
            && !given.iter().any(|(key, _)| *key == setting.name)
        {
            settings.push((setting.name.clone(), default.clone()));
        }
    }
    settings
}

/// How long a call may run before it is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// The sandbox's `call_timeout`.
    Configured,
    /// Two epoch ticks (10–20 ms): for calls made on a thread that must not be held long.
    Brief,
}

/// [`Deadline::Brief`] in epoch ticks. Two, because the next tick may come at once.
const BRIEF_DEADLINE_TICKS: u64 = 2;

/// One live instance: a store and the plugin's exports in it. Reused across batches until a
/// call fails.
pub(crate) struct Instance {
    store: Store<SandboxState>,
    bindings: Guest,
    digest: String,
    /// Linear memory once configured, before any batch.
    configured_bytes: usize,
}

impl Instance {
    fn new(engine: &PluginEngine, pre: &GuestPre, digest: &str, id: &str) -> Result<Self, LoadError> {
        let state = SandboxState::new(bytes(engine.config().max_memory), engine.memory_budget().clone());
        let mut store = Store::new(engine.engine(), state);
        store.limiter(|state| state.limiter());
        store.set_epoch_deadline(engine.config().deadline_ticks());
        let bindings = pre.instantiate(&mut store).map_err(|e| LoadError::Compile {
            path: PathBuf::from(id),
            message: format!("instantiation failed: {e:#}"),
        })?;
        Ok(Self { store, bindings, digest: digest.to_string(), configured_bytes: 0 })
    }

    /// Digest of the plugin this instance runs.
    pub(crate) fn digest(&self) -> &str {
        &self.digest
    }

    /// Linear memory the instance has grown to, in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.store.data().memory_bytes()
    }

    /// How much linear memory the instance's calls have added since it was configured.
    pub(crate) fn grown_bytes(&self) -> usize {
        self.memory_bytes().saturating_sub(self.configured_bytes)
    }

    /// Runs `f` under `deadline` and classifies its failure.
    fn call<R>(
        &mut self,
        id: &str,
        engine: &PluginEngine,
        deadline: Deadline,
        f: impl FnOnce(&mut Store<SandboxState>, &Guest) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let ticks = match deadline {
            Deadline::Configured => engine.config().deadline_ticks(),
            Deadline::Brief => BRIEF_DEADLINE_TICKS,
        };
        self.store.set_epoch_deadline(ticks);
        f(&mut self.store, &self.bindings).map_err(|error| classify(id, engine, &self.store, error))
    }

    /// Transforms a batch; the output is validated against the manifest.
    pub(crate) fn transform(&mut self, plugin: &Plugin, batch: &Batch) -> Result<Transformed, CallError> {
        let id = plugin.id();
        let raw = self.call(&id, plugin.engine(), Deadline::Configured, |store, b| b.transform(store, &batch.0))?;
        let limit = bytes(plugin.engine().config().max_output);
        let bytes = output::transformed_size(&raw);
        if bytes > limit {
            return Err(CallError::OutputTooLarge { plugin: id, bytes, limit });
        }
        Transformed::from_wit(raw, plugin.manifest(), batch.len())
            .map_err(|reason| CallError::InvalidOutput { plugin: id, reason })
    }

    /// Splits a batch into canonical single records; the output is validated.
    pub(crate) fn split(
        &mut self,
        plugin: &Plugin,
        batch: &Batch,
        deadline: Deadline,
    ) -> Result<SplitRecords, CallError> {
        let id = plugin.id();
        let raw = self.call(&id, plugin.engine(), deadline, |store, b| b.split(store, &batch.0))?;
        let limit = bytes(plugin.engine().config().max_output);
        let bytes = output::split_size(&raw);
        if bytes > limit {
            return Err(CallError::OutputTooLarge { plugin: id, bytes, limit });
        }
        SplitRecords::from_wit(raw, batch.len(), plugin.manifest())
            .map_err(|reason| CallError::InvalidOutput { plugin: id, reason })
    }
}

fn classify(id: &str, engine: &PluginEngine, store: &Store<SandboxState>, error: wasmtime::Error) -> CallError {
    let plugin = id.to_string();
    if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        return CallError::Timeout { plugin, limit: engine.config().call_timeout };
    }
    match store.data().memory_refused() {
        Some(sandbox::Refusal::Instance) => {
            return CallError::MemoryLimit { plugin, limit: bytes(engine.config().max_memory) };
        }
        Some(sandbox::Refusal::Host) => {
            return CallError::HostMemoryLimit { plugin, limit: bytes(engine.config().max_total_memory) };
        }
        None => {}
    }
    let mut message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    if let Some(line) = store.data().last_output_line() {
        message.push_str(": ");
        message.push_str(&line);
    }
    CallError::Trap { plugin, message }
}
