//! The log: where the API makes accepted records durable before answering 202, and where the
//! stream core reads them from.
//!
//! [`RecordLog`] is the interface; [`SqliteSpool`] implements it in one SQLite file for the
//! embedded default (no services needed). The Kafka log implements the same interface.

mod record;
mod spool;

use std::future::Future;
use std::pin::Pin;

pub use record::{LogRecord, Position, Provenance, StoredRecord};
pub use spool::{SpoolConfig, SqliteSpool};

/// A boxed future, so that `RecordLog` can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the log could not take or give records.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log cannot be written now (disk, broker...); nothing was appended.
    #[error("the log is unavailable: {0}")]
    Unavailable(String),
    /// The source name is not valid for the log.
    #[error("invalid source name `{0}`")]
    InvalidSource(String),
}

/// A durable, partitioned, append-only log with one stream per source.
pub trait RecordLog: Send + Sync {
    /// Appends `records` of `source`, all with `provenance`, and resolves once they are durable.
    /// Either every record is appended or none is.
    fn append<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        records: Vec<LogRecord>,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>>;

    /// Whether the log is reachable and the last write succeeded.
    fn is_ready(&self) -> bool;

    /// A short name for status pages (`sqlite-spool`, `kafka`).
    fn kind(&self) -> &'static str;
}
