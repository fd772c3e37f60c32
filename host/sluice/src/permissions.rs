//! Who may read what sluice writes: the data directory is private to its user (0700) and every
//! file sluice creates is 0600 (password and token hashes, spooled records, Parquet files with
//! patient data), except that a warehouse outside the data directory may be opened to the
//! group (0750 directories, 0640 files) for Trino's readers.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Files and directories created from now on are private to this user.
pub fn private_by_default() {
    // SAFETY: umask only changes the process's file creation mask; it cannot fail.
    unsafe { libc::umask(0o077) };
}

/// Files and directories created from now on are readable by the group as well (the data
/// directory itself stays 0700, so only a warehouse outside it is shared).
pub fn group_readable() {
    // SAFETY: as above.
    unsafe { libc::umask(0o027) };
}

/// Warnings for the data directory and its databases when other users may read them.
pub fn wider_than_private(data_dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let check = |path: &Path, wanted: u32, fix: &str, warnings: &mut Vec<String>| {
        if let Ok(metadata) = std::fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warnings.push(format!(
                    "{} is readable by other users (mode {mode:04o}, expected {wanted:04o}): run `{fix} {}`",
                    path.display(),
                    path.display()
                ));
            }
        }
    };
    check(data_dir, 0o700, "chmod 700", &mut warnings);
    for name in ["auth.db", "spool.db", "kafka-idempotency.db"] {
        check(&data_dir.join(name), 0o600, "chmod 600", &mut warnings);
    }
    warnings
}
