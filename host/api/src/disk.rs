//! Headroom on the disk that holds the log: requests are refused (507) while free space is below
//! a floor, so that the stream always has room to commit what was accepted and free the log's
//! space, and the server recovers from a full disk under continued load.

use std::path::PathBuf;

/// The floor on free space of the data directory's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskGuard {
    path: PathBuf,
    min_free_bytes: u64,
}

impl DiskGuard {
    /// A guard that keeps `min_free_bytes` free on the file system of `path`.
    pub fn new(path: impl Into<PathBuf>, min_free_bytes: u64) -> Self {
        Self { path: path.into(), min_free_bytes }
    }

    /// Bytes an unprivileged writer may still use on the file system, if it can be read.
    pub fn free_bytes(&self) -> Option<u64> {
        let path = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes()).ok()?;
        let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a NUL-terminated string and `stats` a properly sized struct.
        if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
            return None;
        }
        Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
    }

    /// Whether there is room above the floor (a file system that cannot be read counts as room:
    /// the log's own errors then decide).
    pub fn has_room(&self) -> bool {
        self.free_bytes().is_none_or(|free| free >= self.min_free_bytes)
    }
}
