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

    /// The `--plugins-dir` given, if any (see `Assembly::plugins_dir` for the directory used).
    pub fn plugins_dir_flag(&self) -> Option<&Path> {
        self.plugins_dir.as_deref()
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
