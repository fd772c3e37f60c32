//! The storage a warehouse lives on, chosen by URL: `hdfs://` (hdfs-native) or `file://`.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::error::WarehouseError;

/// An object store and the directory of the warehouse within it.
#[derive(Clone)]
pub struct Storage {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The warehouse root within the store.
    pub root: Path,
    /// The URL it was opened from, for messages.
    pub url: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens `url`: `file:///abs/dir` (created if missing; writes are fsynced) or
    /// `hdfs://namenode:port/dir`.
    pub fn open(url: &str) -> Result<Self, WarehouseError> {
        let invalid = |reason: &str| WarehouseError::InvalidUrl { url: url.to_string(), reason: reason.to_string() };
        let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| invalid("not an absolute local path"))?;
                std::fs::create_dir_all(&dir).map_err(|e| invalid(&format!("cannot create {}: {e}", dir.display())))?;
                let store = LocalFileSystem::new_with_prefix(&dir)?.with_fsync(true);
                Ok(Self { store: Arc::new(store), root: Path::default(), url: url.to_string() })
            }
            "hdfs" => {
                let host = parsed.host_str().ok_or_else(|| invalid("no name node host"))?;
                let authority = match parsed.port() {
                    Some(port) => format!("hdfs://{host}:{port}"),
                    None => format!("hdfs://{host}"),
                };
                let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new().with_url(authority).build()?;
                let root = Path::parse(parsed.path()).map_err(|e| invalid(&e.to_string()))?;
                Ok(Self { store: Arc::new(store), root, url: url.to_string() })
            }
            other => Err(invalid(&format!("unsupported scheme `{other}` (use hdfs:// or file://)"))),
        }
    }

    /// `parts` below the warehouse root.
    pub fn path(&self, parts: &[&str]) -> Path {
        let mut path = self.root.clone();
        for part in parts {
            path = path.join(*part);
        }
        path
    }
}
