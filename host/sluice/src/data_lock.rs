//! One `sluice serve` per data directory. Two servers on one embedded log would both read every
//! partition and write every record to the warehouse twice (and two with one Kafka instance id
//! would fence each other's transactions), so `serve` holds an exclusive lock on a file in the
//! data directory while it runs (`serve.lock`; with Kafka `serve-<instance id>.lock`, so
//! replicas sharing a volume each hold their own), released by the kernel when the process
//! ends, a `kill -9` included. With the embedded log the directory itself is locked too, so
//! that deleting a "stale" `serve.lock` does not let a second server in. Admin commands do not
//! take it: they may run beside the server.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::Context;

/// Held while the server runs.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    _dir: Option<File>,
}

/// Whether `data_dir` is locked by the whole, or only by its lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The directory itself is locked too (the embedded log: one server per directory, whatever
    /// happens to the lock file: an operator deleting a "stale" `serve.lock` does not let a
    /// second server in).
    Directory,
    /// Only the named file (Kafka: replicas sharing a volume each hold their own).
    File,
}

impl DataDirLock {
    /// Locks `data_dir` for this process with the file `name` (and, for [`Scope::Directory`], the
    /// directory itself), or says which process holds it.
    pub fn acquire(data_dir: &Path, name: &str, scope: Scope) -> anyhow::Result<Self> {
        let dir = match scope {
            Scope::File => None,
            Scope::Directory => {
                let dir = File::open(data_dir).with_context(|| format!("cannot open {}", data_dir.display()))?;
                match dir.try_lock() {
                    Ok(()) => Some(dir),
                    Err(TryLockError::WouldBlock) => {
                        let holder = std::fs::read_to_string(data_dir.join(name)).unwrap_or_default();
                        return Err(in_use(data_dir, holder.trim()));
                    }
                    Err(TryLockError::Error(error)) => {
                        return Err(error).with_context(|| format!("cannot lock {}", data_dir.display()));
                    }
                }
            }
        };
        let path = data_dir.join(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(in_use(data_dir, holder.trim()));
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(Self { _file: file, _dir: dir })
    }
}

/// The refusal when another server holds `data_dir` (`holder`: its pid, if known).
fn in_use(data_dir: &Path, holder: &str) -> anyhow::Error {
    let who = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
    anyhow::anyhow!(
        "the data directory {} is in use by another sluice serve{who}: two servers on one data directory would \
         store every record twice; stop that one, or give this one its own --data-dir",
        data_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path(), "serve.lock", Scope::Directory).unwrap();
        let other = DataDirLock::acquire(dir.path(), "serve-other.lock", Scope::File).unwrap();
        let refused = DataDirLock::acquire(dir.path(), "serve.lock", Scope::Directory).unwrap_err().to_string();
        assert_eq!(
            refused,
            format!(
                "the data directory {} is in use by another sluice serve (pid {}): two servers on one data \
                 directory would store every record twice; stop that one, or give this one its own --data-dir",
                dir.path().display(),
                std::process::id()
            )
        );
        // An operator deleting the lock file of a running server does not let a second one in.
        std::fs::remove_file(dir.path().join("serve.lock")).unwrap();
        let refused = DataDirLock::acquire(dir.path(), "serve.lock", Scope::Directory).unwrap_err().to_string();
        assert!(refused.starts_with("the data directory "), "{refused}");
        assert!(refused.contains("is in use by another sluice serve: "), "no pid to name: {refused}");
        drop((first, other));
        DataDirLock::acquire(dir.path(), "serve.lock", Scope::Directory).unwrap();
    }
}
