//! Where sluice keeps things under its data directory.

use std::path::{Path, PathBuf};

/// Locations derived from `--data-dir` and `--plugins-dir`.
#[derive(Debug, Clone)]
pub struct Paths {
    data_dir: PathBuf,
    plugins_dir: Option<PathBuf>,
}

impl Paths {
    /// Paths for a data directory and an optional plugin directory override.
    pub fn new(data_dir: &Path, plugins_dir: Option<&Path>) -> Self {
        Self { data_dir: data_dir.to_path_buf(), plugins_dir: plugins_dir.map(Path::to_path_buf) }
    }

    /// Directory of plugin files loaded beside the bundled plugins, unless `plugins.dir` says
    /// otherwise (see `Assembly::plugins_dir`).
    pub fn plugins_dir(&self) -> PathBuf {
        self.plugins_dir.clone().unwrap_or_else(|| self.data_dir.join("plugins"))
    }

    /// The `--plugins-dir` given, if any.
    pub fn plugins_dir_flag(&self) -> Option<PathBuf> {
        self.plugins_dir.clone()
    }

    /// Cache of compiled plugins.
    pub fn compile_cache(&self) -> PathBuf {
        self.data_dir.join("cache").join("plugins")
    }

    /// The auth database.
    pub fn auth_db(&self) -> PathBuf {
        self.data_dir.join("auth.db")
    }

    /// The embedded log.
    pub fn spool(&self) -> PathBuf {
        self.data_dir.join("spool.db")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the data directory exists (read-only commands create nothing).
    pub fn data_dir_exists(&self) -> bool {
        self.data_dir.is_dir()
    }
}
