//! On-disk cache of compiled plugins, keyed by content digest and engine compatibility.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

/// Compiled components stored as `<dir>/<sha256 of the .wasm>-<engine hash>.cwasm`.
///
/// The engine hash covers the wasmtime version and every setting that affects generated code,
/// so upgrading sluice or changing its engine settings never loads stale code.
#[derive(Debug)]
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    engine_hash: String,
}

impl CompileCache {
    pub(crate) fn open(dir: Option<PathBuf>, engine: &Engine) -> Result<Self, LoadError> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|source| LoadError::Io { path: dir.clone(), source })?;
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self { dir, engine_hash: format!("{:016x}", hasher.finish()) })
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
                Ok(component) => return Ok((component, true)),
                Err(error) => {
                    tracing::warn!(path = %entry.display(), %error, "discarding unusable compiled plugin");
                    let _ = std::fs::remove_file(entry);
                }
            }
        }
        let component = Component::new(engine, wasm)
            .map_err(|e| LoadError::Compile { path: origin.to_path_buf(), message: format!("{e:#}") })?;
        if let Some(entry) = entry
            && let Err(error) = store(&component, &entry)
        {
            tracing::warn!(path = %entry.display(), %error, "cannot cache compiled plugin");
        }
        Ok((component, false))
    }
}

/// Writes the compiled code next to its final name, then renames, so a reader never sees half.
fn store(component: &Component, entry: &Path) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(|e| std::io::Error::other(e.to_string()))?;
    let partial = entry.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, entry)
}
