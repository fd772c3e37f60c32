//! On-disk cache of compiled plugins, keyed by content digest and engine compatibility.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::error::LoadError;

/// Compiled code that no loaded plugin uses is deleted once this long has passed since it was
/// last compiled or loaded (by any process): the hour leaves another process on the same data
/// directory (an admin command, an instance being restarted with another version) what it has
/// just compiled or loaded.
pub const UNUSED_CODE_KEPT_FOR: Duration = Duration::from_secs(3600);

/// Compiled components stored as `<dir>/<sha256 of the .wasm>-<engine hash>.cwasm`.
///
/// The engine hash covers the wasmtime version and every setting that affects generated code,
/// so upgrading sluice or changing its engine settings never loads stale code.
///
/// Plugins are compiled by an engine of their own, made with the same settings and dropped
/// once the code is out: wasmtime's compiler keeps its working state (megabytes per compiling
/// thread) for the engine's lifetime, which for the shared engine is the process's.
#[derive(Debug)]
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    engine_hash: String,
    settings: Config,
}

impl CompileCache {
    /// The cache under `dir` (none when `None`) for code run by `engine`, made with `settings`.
    pub(crate) fn open(dir: Option<PathBuf>, engine: &Engine, settings: Config) -> Result<Self, LoadError> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|source| LoadError::Io { path: dir.clone(), source })?;
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self { dir, engine_hash: format!("{:016x}", hasher.finish()), settings })
    }

    fn entry(&self, digest: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.join(format!("{digest}-{}.cwasm", self.engine_hash)))
    }

    /// The compiled component for `wasm`, from the cache when present, else compiled and stored.
    /// Returns whether it came from the cache.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        origin: &Path,
        digest: &str,
        wasm: &[u8],
    ) -> Result<(Component, bool), LoadError> {
        let entry = self.entry(digest);
        if let Some(entry) = entry.as_ref().filter(|e| e.exists()) {
            // SAFETY: the file was written by `store` below from `Component::serialize` of this
            // same digest under the same engine hash; the cache directory belongs to sluice.
            match unsafe { Component::deserialize_file(engine, entry) } {
                Ok(component) => {
                    // Marked in use, for `keep` in other processes sharing the directory.
                    touch(entry);
                    return Ok((component, true));
                }
                Err(error) => {
                    tracing::warn!(path = %entry.display(), %error, "discarding unusable compiled plugin");
                    let _ = std::fs::remove_file(entry);
                }
            }
        }
        let compile_error =
            |e: wasmtime::Error| LoadError::Compile { path: origin.to_path_buf(), message: crate::error::one_line(&e) };
        let compiled = Engine::new(&self.settings).and_then(|compiler| compiler.precompile_component(wasm));
        let compiled = compiled.map_err(compile_error)?;
        // SAFETY: `compiled` was made a moment ago by wasmtime, from an engine with the same
        // settings as `engine` (deserializing checks that they are compatible).
        let component = unsafe { Component::deserialize(engine, &compiled) }.map_err(compile_error)?;
        if let Some(entry) = entry
            && let Err(error) = store(&compiled, &entry)
        {
            tracing::warn!(path = %entry.display(), %error, "cannot cache compiled plugin");
        }
        Ok((component, false))
    }

    /// Marks the code of the `loaded` plugins (by digest) in use now, and deletes the compiled
    /// code none of them uses that was last compiled, loaded or marked
    /// [`UNUSED_CODE_KEPT_FOR`] ago or longer: earlier versions of plugins, plugins removed,
    /// code compiled by other sluice versions, copies a crash left half-written. Other files
    /// are left alone. Returns how many files were deleted.
    pub(crate) fn keep(&self, loaded: &HashSet<&str>) -> usize {
        let Some(dir) = &self.dir else { return 0 };
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        let ours = format!("-{}.cwasm", self.engine_hash);
        let now = SystemTime::now();
        let mut deleted = 0;
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.strip_suffix(&ours).is_some_and(|digest| loaded.contains(digest)) {
                touch(&entry.path());
                continue;
            }
            if !name.ends_with(".cwasm") && !name.contains(".partial-") {
                continue;
            }
            let unused_for = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| now.duration_since(t).ok());
            if unused_for.is_some_and(|age| age >= UNUSED_CODE_KEPT_FOR) && std::fs::remove_file(entry.path()).is_ok() {
                deleted += 1;
            }
        }
        deleted
    }
}

/// Sets `path`'s modification time to now (best effort): the code there was just used.
fn touch(path: &Path) {
    let file = std::fs::File::options().write(true).open(path);
    let _ = file.and_then(|file| file.set_modified(SystemTime::now()));
}

/// Writes the compiled code next to its final name, then renames, so a reader never sees half.
fn store(compiled: &[u8], entry: &Path) -> std::io::Result<()> {
    let partial = entry.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, compiled)?;
    std::fs::rename(&partial, entry)
}
