//! `[log]`: which log holds accepted records, and what every backend shares.

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::spool::{DEFAULT_RETENTION, SpoolConfig};

/// Which log holds accepted records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// The embedded SQLite spool in the data directory.
    #[default]
    Spool,
    /// Apache Kafka (settings in `[kafka]`).
    Kafka,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `spool` (embedded, default) or `kafka`.
    pub kind: LogKind,
    /// Partitions per source (spool), or of each raw topic sluice creates (Kafka).
    pub partitions: u32,
    /// How long the answer to a request sent with an `Idempotency-Key` is remembered (default
    /// a day): a retry within it gets the original answer and stores nothing.
    #[serde(with = "humantime_serde")]
    pub idempotency_window: Duration,
    /// How long the embedded spool keeps a record after the stream has committed it to the
    /// warehouse (`"0s"` trims at once). Kafka keeps its topics' own retention.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Free space kept on the data directory's file system: below it the API answers 507 (and
    /// /readyz 503) so that the stream always has room to commit and trim (0: no floor).
    pub min_free: ByteSize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            kind: LogKind::Spool,
            partitions: 4,
            idempotency_window: crate::DEFAULT_IDEMPOTENCY_WINDOW,
            retention: DEFAULT_RETENTION,
            min_free: ByteSize::mib(256),
        }
    }
}

/// Most partitions a source's log may have: each is read by a consumer of its own.
pub const MAX_PARTITIONS: u32 = 1024;

impl LogConfig {
    /// Checks what the types cannot: at least one partition and at most [`MAX_PARTITIONS`], and
    /// an idempotency window (without one a retried request would be stored again).
    pub fn check(&self) -> Result<(), sluice_config::ValueError> {
        sluice_config::check(
            "log",
            [
                ("partitions", "from 1 to 1024", self.partitions == 0 || self.partitions > MAX_PARTITIONS),
                ("idempotency_window", "at least 1s", self.idempotency_window < Duration::from_secs(1)),
            ],
        )
    }

    /// The embedded spool's settings, with its file at `path`.
    pub fn spool(&self, path: impl Into<PathBuf>) -> SpoolConfig {
        SpoolConfig {
            partitions: self.partitions,
            idempotency_window: self.idempotency_window,
            retention: self.retention,
            ..SpoolConfig::new(path)
        }
    }
}
