//! The set of loaded plugins: bundled ones plus every `.wasm` file in a directory, kept in step
//! with the directory while sluice runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};

use sluice_contract::BundledPlugin;

use crate::engine::PluginEngine;
use crate::error::LoadError;
use crate::plugin::{Plugin, PluginOrigin};

/// How long the directory must be quiet before a burst of file events is acted on.
const SETTLE: Duration = Duration::from_millis(150);

/// How often a watching registry keeps the compile cache when the directory does not change.
const CACHE_KEEPING: Duration = Duration::from_secs(600);

/// How often a watching registry checks that the directory at its path is still the one it
/// watches (an operator may move it aside and make a new one).
const DIRECTORY_CHECK: Duration = Duration::from_secs(2);

/// A change to the set of loaded plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEvent {
    /// A plugin was loaded or replaced by another version.
    Loaded {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
        /// Hex SHA-256 of the `.wasm`.
        digest: String,
    },
    /// A plugin is no longer available.
    Unloaded {
        /// Plugin name.
        name: String,
    },
    /// A file could not be loaded; whatever was loaded before keeps running.
    Failed {
        /// The file.
        path: PathBuf,
        /// Why, in words.
        reason: String,
    },
    /// A rescan of the directory finished.
    Rescanned,
}

/// Decides whether a plugin version read from the directory may run: `Err(reason)` keeps
/// whatever ran before live and reports the file as failed (e.g. a table schema the warehouse's
/// files cannot follow, which the stream would refuse after records were accepted).
pub type Admission = Arc<dyn Fn(&Plugin) -> Result<(), String> + Send + Sync>;

/// Gauge: plugin files (and returning bundled plugins) that failed to load or were refused, as
/// of the last rescan.
pub const PLUGIN_FILES_FAILED: &str = "sluice_plugin_files_failed";

/// Loaded plugins, by name. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct PluginRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    engine: PluginEngine,
    dir: Option<PathBuf>,
    bundled: Vec<Arc<Plugin>>,
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    /// Per file: its digest when last read and the plugin it provided, if it loaded.
    files: Mutex<HashMap<PathBuf, FileState>>,
    failures: Mutex<BTreeMap<PathBuf, String>>,
    subscribers: Mutex<Vec<Sender<RegistryEvent>>>,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    rescan_lock: Mutex<()>,
    admission: RwLock<Option<Admission>>,
    /// Set by [`PluginRegistry::watch`]: the registry of a server, which alone keeps the
    /// compile cache (marks its plugins' code in use, deletes code no longer used).
    watching: AtomicBool,
}

#[derive(Clone)]
struct FileState {
    digest: String,
    plugin: Option<Arc<Plugin>>,
}

impl PluginRegistry {
    /// Loads the bundled plugins and every `*.wasm` in `dir` (created when missing). A file in the
    /// directory replaces a bundled plugin of the same name. Files that fail are reported by
    /// [`failures`](Self::failures) and leave the others loaded; a bundled plugin that fails is an
    /// error, since it is part of sluice itself.
    pub fn open(engine: &PluginEngine, dir: Option<&Path>, bundled: &[BundledPlugin]) -> Result<Self, LoadError> {
        let bundled = bundled
            .iter()
            .map(|b| Plugin::load(engine, PluginOrigin::Bundled(b.file_name.to_string()), b.wasm).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(|source| LoadError::Io { path: dir.to_path_buf(), source })?;
        }
        let registry = Self {
            inner: Arc::new(Inner {
                engine: engine.clone(),
                dir: dir.map(Path::to_path_buf),
                bundled,
                plugins: RwLock::default(),
                files: Mutex::default(),
                failures: Mutex::default(),
                subscribers: Mutex::default(),
                watcher: Mutex::default(),
                rescan_lock: Mutex::default(),
                admission: RwLock::default(),
                watching: AtomicBool::new(false),
            }),
        };
        registry.rescan()?;
        Ok(registry)
    }

    /// The plugin named `name`, if loaded.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.inner.plugins.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Every loaded plugin, by name.
    pub fn list(&self) -> Vec<Arc<Plugin>> {
        self.inner.plugins.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Files that failed to load, with the reason, as of the last rescan.
    pub fn failures(&self) -> Vec<(PathBuf, String)> {
        let failures = self.inner.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.iter().map(|(p, r)| (p.clone(), r.clone())).collect()
    }

    /// Sets the [`PLUGIN_FILES_FAILED`] gauge from the last rescan (done by every rescan; call
    /// it once more after installing a metrics recorder). For alerts: a file dropped in that did
    /// not load leaves the previous version running, which otherwise only the log says.
    pub fn publish_metrics(&self) {
        let failed = self.inner.failures.lock().unwrap_or_else(|e| e.into_inner()).len();
        metrics::gauge!(PLUGIN_FILES_FAILED).set(failed as f64);
    }

    /// The plugin directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    /// Checks every plugin version read from the directory from now on with `admission`
    /// before it replaces what runs.
    pub fn set_admission(&self, admission: Admission) {
        *self.inner.admission.write().unwrap_or_else(|e| e.into_inner()) = Some(admission);
    }

    /// A channel receiving every later change.
    pub fn subscribe(&self) -> Receiver<RegistryEvent> {
        let (tx, rx) = mpsc::channel();
        self.inner.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    /// Starts watching the directory: new and changed files are compiled on a background thread
    /// and swapped in atomically; deleted files are unloaded. Stops when the registry is dropped.
    pub fn watch(&self) -> Result<(), LoadError> {
        let Some(dir) = self.inner.dir.clone() else { return Ok(()) };
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        })
        .map_err(|e| LoadError::Io { path: dir.clone(), source: std::io::Error::other(e) })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| LoadError::Io { path: dir.clone(), source: std::io::Error::other(e) })?;
        *self.inner.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        self.inner.watching.store(true, Ordering::SeqCst);
        let files = self.inner.files.lock().unwrap_or_else(|e| e.into_inner()).clone();
        keep_cache(&self.inner, &files);
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        thread::Builder::new()
            .name("sluice-plugin-watch".into())
            .spawn(move || watch_loop(&weak, &rx))
            .map_err(|source| LoadError::Io { path: PathBuf::from("<watch thread>"), source })?;
        Ok(())
    }

    /// Reads the directory again and brings the loaded set in step with it.
    pub fn rescan(&self) -> Result<(), LoadError> {
        let inner = &self.inner;
        let _one_at_a_time = inner.rescan_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut files = inner.files.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut failures = BTreeMap::new();
        let mut events = Vec::new();

        let paths = match &inner.dir {
            Some(dir) => wasm_files(dir)?,
            None => Vec::new(),
        };
        files.retain(|path, _| paths.contains(path));
        let admission = inner.admission.read().unwrap_or_else(|e| e.into_inner()).clone();
        // What a file provided before, if it runs: a version held back by a table conflict never
        // ran, and must not come back once its bytes were replaced.
        let running_from = |files: &HashMap<PathBuf, FileState>, path: &Path| {
            let plugin = files.get(path).and_then(|f| f.plugin.clone())?;
            let plugins = inner.plugins.read().unwrap_or_else(|e| e.into_inner());
            plugins.get(&plugin.manifest().name).is_some_and(|r| Arc::ptr_eq(r, &plugin)).then_some(plugin)
        };
        for path in &paths {
            let bytes = match read_limited(&inner.engine, path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    // A file over `plugins.max_wasm`, unreadable: said once, as a load failure is.
                    fail_once(inner, path, error.to_string(), &mut failures, &mut events);
                    let previous = running_from(&files, path);
                    if let Some(state) = files.get_mut(path) {
                        state.plugin = previous;
                    }
                    continue;
                }
            };
            let digest = hex::encode(Sha256::digest(&bytes));
            if files.get(path).is_some_and(|f| f.digest == digest) {
                if let Some(reason) = inner.failures.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
                    failures.insert(path.clone(), reason.clone());
                }
                continue;
            }
            let loaded =
                Plugin::load(&inner.engine, PluginOrigin::File(path.clone()), &bytes).and_then(
                    |plugin| match admission.as_ref().map_or(Ok(()), |admit| admit(&plugin)) {
                        Ok(()) => Ok(plugin),
                        Err(reason) => Err(LoadError::NotAdmitted { path: path.clone(), reason }),
                    },
                );
            match loaded {
                Ok(plugin) => {
                    files.insert(path.clone(), FileState { digest, plugin: Some(Arc::new(plugin)) });
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "plugin failed to load");
                    events.push(RegistryEvent::Failed { path: path.clone(), reason: error.to_string() });
                    failures.insert(path.clone(), error.to_string());
                    // Keep serving what this file provided before, if anything.
                    let previous = running_from(&files, path);
                    files.insert(path.clone(), FileState { digest, plugin: previous });
                }
            }
        }

        // Desired set: files in name order (first wins), then bundled plugins not overridden.
        let mut desired: BTreeMap<String, Arc<Plugin>> = BTreeMap::new();
        for path in &paths {
            let Some(plugin) = files.get(path).and_then(|f| f.plugin.clone()) else { continue };
            let name = plugin.manifest().name.clone();
            if let Some(other) = desired.get(&name) {
                let error = LoadError::DuplicateName { path: path.clone(), name, other: other.origin().to_string() };
                events.push(RegistryEvent::Failed { path: path.clone(), reason: error.to_string() });
                failures.insert(path.clone(), error.to_string());
                continue;
            }
            desired.insert(name, plugin);
        }
        for plugin in &inner.bundled {
            let name = plugin.manifest().name.clone();
            if desired.contains_key(&name) {
                continue;
            }
            // A bundled plugin returning in place of a file that was removed is admitted as a
            // new version would be; refused, the version running keeps running.
            let running = inner.plugins.read().unwrap_or_else(|e| e.into_inner()).get(&name).cloned();
            if let (Some(running), Some(admit)) = (running, admission.as_ref())
                && !Arc::ptr_eq(&running, plugin)
                && let Err(reason) = admit(plugin)
            {
                let path = plugin.origin().display_path();
                let error = LoadError::NotAdmitted { path: path.clone(), reason };
                fail_once(inner, &path, error.to_string(), &mut failures, &mut events);
                desired.insert(name, running);
                continue;
            }
            desired.insert(name, plugin.clone());
        }

        refuse_table_conflicts(inner, &mut desired, &mut failures, &mut events);

        {
            let mut plugins = inner.plugins.write().unwrap_or_else(|e| e.into_inner());
            for (name, plugin) in &desired {
                if plugins.get(name).is_none_or(|old| !Arc::ptr_eq(old, plugin)) {
                    match plugins.get(name) {
                        Some(old) => tracing::info!(
                            plugin = %plugin.id(), previous = %old.id(), digest = %plugin.digest(),
                            origin = %plugin.origin(), "plugin replaced"
                        ),
                        None => tracing::info!(
                            plugin = %plugin.id(), digest = %plugin.digest(), origin = %plugin.origin(), "plugin loaded"
                        ),
                    }
                    events.push(RegistryEvent::Loaded {
                        name: name.clone(),
                        version: plugin.manifest().version.clone(),
                        digest: plugin.digest().to_string(),
                    });
                }
            }
            for name in plugins.keys() {
                if !desired.contains_key(name) {
                    tracing::info!(plugin = %name, "plugin unloaded");
                    events.push(RegistryEvent::Unloaded { name: name.clone() });
                }
            }
            *plugins = desired;
        }
        if inner.watching.load(Ordering::SeqCst) {
            keep_cache(inner, &files);
        }
        *inner.files.lock().unwrap_or_else(|e| e.into_inner()) = files;
        *inner.failures.lock().unwrap_or_else(|e| e.into_inner()) = failures;
        self.publish_metrics();
        events.push(RegistryEvent::Rescanned);
        let mut subscribers = inner.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|tx| events.iter().all(|event| tx.send(event.clone()).is_ok()));
        Ok(())
    }
}

/// Why `plugin` cannot run beside `other`, if it cannot: a plugin of another name writing one of
/// its tables with columns the two cannot share (see `TableSchema::conflict_with`).
pub fn table_conflict(plugin: &Plugin, other: &Plugin) -> Option<String> {
    if other.manifest().name == plugin.manifest().name {
        return None;
    }
    plugin.manifest().tables.iter().find_map(|table| {
        let theirs = other.manifest().tables.iter().find(|t| t.name == table.name)?;
        let reason = table.conflict_with(theirs)?;
        Some(format!(
            "table `{}` is also written by plugin {} ({}), and the two cannot share it: {reason}",
            table.name,
            other.id(),
            other.origin()
        ))
    })
}

/// Refuses each new version in `desired` (one not running yet) that declares a table another
/// plugin file also writes with columns the two cannot share (see `TableSchema::conflict_with`):
/// it is compared with the other plugins running and the new versions admitted before it (by
/// name), and when refused, the version running, if any, keeps running. Otherwise the first to
/// write would fix the table's columns and every record of the other would go to the
/// dead-letter queue. A bundled plugin in such a conflict with a file steps aside (is not
/// loaded) instead: the operator's file decides the table, as a file of the bundled plugin's
/// own name does. (Rows the bundled plugin wrote already are the warehouse admission's to judge.)
fn refuse_table_conflicts(
    inner: &Inner,
    desired: &mut BTreeMap<String, Arc<Plugin>>,
    failures: &mut BTreeMap<PathBuf, String>,
    events: &mut Vec<RegistryEvent>,
) {
    let running = inner.plugins.read().unwrap_or_else(|e| e.into_inner()).clone();
    let is_running = |name: &str, plugin: &Arc<Plugin>| running.get(name).is_some_and(|r| Arc::ptr_eq(r, plugin));
    let is_file = |plugin: &Plugin| matches!(plugin.origin(), PluginOrigin::File(_));
    // Bundled plugins first (so that a file judged later sets them aside), then by name.
    let mut fresh: Vec<(&String, &Arc<Plugin>)> = desired.iter().filter(|(n, p)| !is_running(n, p)).collect();
    fresh.sort_by_key(|(name, plugin)| (is_file(plugin), *name));
    let mut fresh: std::collections::VecDeque<String> = fresh.into_iter().map(|(name, _)| name.clone()).collect();
    // Those a new version is compared with: the others running and staying, the new admitted.
    let mut settled: Vec<Arc<Plugin>> =
        running.iter().filter(|(name, _)| desired.contains_key(*name)).map(|(_, p)| p.clone()).collect();
    while let Some(name) = fresh.pop_front() {
        let Some(plugin) = desired.get(&name).cloned() else { continue };
        // A bundled plugin steps aside for a file writing one of its tables in another shape, as
        // it does for a file of its own name: the operator's plugin decides the table.
        let with_a_file =
            settled.iter().filter(|other| is_file(other)).find_map(|other| table_conflict(&plugin, other));
        let conflict = match (is_file(&plugin), with_a_file) {
            (true, conflict) => conflict,
            (false, Some(reason)) => {
                set_aside(&plugin, reason, running.is_empty());
                desired.remove(&name);
                continue;
            }
            (false, None) => settled.iter().find_map(|other| table_conflict(&plugin, other)),
        };
        match conflict {
            None => {
                if is_file(&plugin) {
                    let aside: Vec<(Arc<Plugin>, String)> = (settled.iter().filter(|other| !is_file(other)))
                        .filter_map(|other| Some((other.clone(), table_conflict(other, &plugin)?)))
                        .collect();
                    for (bundled, reason) in aside {
                        let bundled_name = bundled.manifest().name.clone();
                        set_aside(&bundled, reason, running.is_empty() || is_running(&bundled_name, &bundled));
                        settled.retain(|other| !Arc::ptr_eq(other, &bundled));
                        desired.remove(&bundled_name);
                    }
                }
                // Refused at the last rescan for a conflict that is gone now.
                failures.remove(&plugin.origin().display_path());
                settled.push(plugin);
            }
            Some(reason) => {
                let path = plugin.origin().display_path();
                let error = LoadError::NotAdmitted { path: path.clone(), reason };
                fail_once(inner, &path, error.to_string(), failures, events);
                let bundled = || inner.bundled.iter().find(|b| b.manifest().name == name && !Arc::ptr_eq(b, &plugin));
                match (running.get(&name), bundled()) {
                    (Some(previous), _) => {
                        desired.insert(name, previous.clone());
                    }
                    // A file overriding a bundled plugin, refused before it ran: the bundled
                    // plugin is judged in its place.
                    (None, Some(bundled)) => {
                        desired.insert(name.clone(), bundled.clone());
                        fresh.push_back(name);
                    }
                    (None, None) => {
                        desired.remove(&name);
                    }
                }
            }
        }
    }
}

/// Says that `bundled` is not loaded because a plugin file writes one of its tables in another
/// shape (`reason`), when `say`: at start, or when it was running; not again at every rescan.
fn set_aside(bundled: &Plugin, reason: String, say: bool) {
    if say {
        tracing::warn!(plugin = %bundled.id(), %reason, "bundled plugin set aside for a plugin file");
    }
}

/// Marks the compiled code of the plugins `files` and the bundled set hold as in use, and
/// deletes the code of plugins no longer loaded once it went unused for an hour, so that a
/// plugin rebuilt and dropped in again and again does not fill the disk with old versions.
fn keep_cache(inner: &Inner, files: &HashMap<PathBuf, FileState>) {
    let loaded: HashSet<&str> = (files.values().filter_map(|f| f.plugin.as_deref()))
        .chain(inner.bundled.iter().map(|p| &**p))
        .map(Plugin::digest)
        .collect();
    let deleted = inner.engine.cache().keep(&loaded);
    if deleted > 0 {
        tracing::info!(files = deleted, "deleted compiled code of plugins no longer loaded");
    }
}

/// Records `reason` as `path`'s failure; logs and reports it only when it is new, so a failure
/// that stays is not said again at every rescan.
fn fail_once(
    inner: &Inner,
    path: &Path,
    reason: String,
    failures: &mut BTreeMap<PathBuf, String>,
    events: &mut Vec<RegistryEvent>,
) {
    let known = inner.failures.lock().unwrap_or_else(|e| e.into_inner()).get(path) == Some(&reason);
    if !known {
        tracing::warn!(path = %path.display(), error = %reason, "plugin failed to load");
        events.push(RegistryEvent::Failed { path: path.to_path_buf(), reason: reason.clone() });
    }
    failures.insert(path.to_path_buf(), reason);
}

fn watch_loop(weak: &Weak<Inner>, rx: &Receiver<()>) {
    let mut kept_at = Instant::now();
    let mut watched = weak.upgrade().and_then(|inner| inner.dir.as_deref().and_then(identity));
    loop {
        match rx.recv_timeout(DIRECTORY_CHECK) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let Some(inner) = weak.upgrade() else { return };
                let now = inner.dir.as_deref().and_then(identity);
                if now != watched {
                    // The directory changed without an event reaching here: it was moved aside,
                    // removed or made again (its events come from the old one, or none), or
                    // an event was missed. A new directory is watched afresh; either way it is
                    // read again.
                    let replaced = now.map(|(dev, ino, _)| (dev, ino)) != watched.map(|(dev, ino, _)| (dev, ino));
                    watched = now;
                    if now.is_none() {
                        continue;
                    }
                    if replaced {
                        rewatch(&inner);
                    }
                } else {
                    if kept_at.elapsed() >= CACHE_KEEPING {
                        // Nothing changed: the loaded code is marked in use again, well within
                        // the hour after which another process sharing the cache may delete it.
                        let files = inner.files.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        keep_cache(&inner, &files);
                        kept_at = Instant::now();
                    }
                    continue;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        // Let a burst of events (a copy in progress) settle before reading the files.
        while rx.recv_timeout(SETTLE).is_ok() {}
        let Some(inner) = weak.upgrade() else { return };
        let registry = PluginRegistry { inner };
        if let Err(error) = registry.rescan() {
            tracing::warn!(%error, "plugin directory rescan failed");
        }
    }
}

/// Which directory is at `path` now and when its entries last changed (device, inode,
/// modification time in nanoseconds), if there is one.
fn identity(path: &Path) -> Option<(u64, u64, i128)> {
    let metadata = std::fs::metadata(path).ok().filter(std::fs::Metadata::is_dir)?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as i128);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((metadata.dev(), metadata.ino(), modified))
    }
    #[cfg(not(unix))]
    {
        Some((0, 0, modified))
    }
}

/// Watches the registry's directory path again (the directory at it now). Should that fail,
/// the checks every [`DIRECTORY_CHECK`] still find its changes.
fn rewatch(inner: &Inner) {
    let Some(dir) = inner.dir.as_deref() else { return };
    let mut watcher = inner.watcher.lock().unwrap_or_else(|e| e.into_inner());
    let Some(watcher) = watcher.as_mut() else { return };
    let _ = watcher.unwatch(dir);
    match watcher.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => tracing::info!(dir = %dir.display(), "the plugin directory was replaced; watching the new one"),
        Err(error) => tracing::warn!(%error, dir = %dir.display(), "cannot watch the plugin directory again"),
    }
}

/// The `*.wasm` files directly in `dir`, sorted; hidden files (in-progress copies) are skipped.
fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Io { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "wasm")
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.'))
                && p.is_file()
        })
        .collect();
    paths.sort();
    Ok(paths)
}

fn read_limited(engine: &PluginEngine, path: &Path) -> Result<Vec<u8>, LoadError> {
    let limit = engine.config().max_wasm.as_u64();
    let read_error = |source| LoadError::Read { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > limit {
        return Err(LoadError::TooLarge { path: path.to_path_buf(), bytes: size, limit });
    }
    std::fs::read(path).map_err(read_error)
}
