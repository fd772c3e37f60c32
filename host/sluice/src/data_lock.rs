//! One `sluice serve` per data directory. Two servers on one embedded log would both read every
//! partition and write every record to the warehouse twice (and two with one Kafka instance id
//! would fence each other's transactions), so `serve` holds an exclusive lock on a file in the
//! data directory while it runs (`serve.lock`; with Kafka `serve-<instance id>.lock`, so
//! replicas sharing a volume each hold their own), released by the kernel when the process
//! ends, a `kill -9` included. Admin commands do not take it: they may run beside the server.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::Context;

/// Held while the server runs.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Locks `data_dir` for this process with the file `name`, or says which process holds it.
    pub fn acquire(data_dir: &Path, name: &str) -> anyhow::Result<Self> {
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
                let holder = holder.trim();
                let who = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
                anyhow::bail!(
                    "the data directory {} is in use by another sluice serve{who}: two servers on one data \
                     directory would store every record twice; stop that one, or give this one its own --data-dir",
                    data_dir.display()
                );
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path(), "serve.lock").unwrap();
        let other = DataDirLock::acquire(dir.path(), "serve-other.lock").unwrap();
        let refused = DataDirLock::acquire(dir.path(), "serve.lock").unwrap_err().to_string();
        assert_eq!(
            refused,
            format!(
                "the data directory {} is in use by another sluice serve (pid {}): two servers on one data \
                 directory would store every record twice; stop that one, or give this one its own --data-dir",
                dir.path().display(),
                std::process::id()
            )
        );
        drop((first, other));
        DataDirLock::acquire(dir.path(), "serve.lock").unwrap();
    }
}
