//! The log: where the API makes accepted records durable before answering 202, and where the
//! stream core reads them from.
//!
//! [`RecordLog`] is the API's side (append); [`StreamLog`] adds the stream core's side
//! (consume, commit, dead letters). [`SqliteSpool`] implements both in one SQLite file for the
//! embedded default (no services needed); the Kafka log (`sluice-kafka`) implements the same
//! interfaces.

mod config;
mod dead_letter;
mod record;
mod remembered;
mod retention;
mod run;
mod spool;
mod tail;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use config::{LogConfig, LogKind, MAX_PARTITIONS};
pub use dead_letter::{DeadLetter, StoredDeadLetter};
pub use record::{BadRun, LogRecord, Position, Provenance, Run, StoredRecord, StoredRun, partition_for};
pub use remembered::{DEFAULT_IDEMPOTENCY_WINDOW, Remembered, RememberedIndex, now_us};
pub use retention::Trimmed;
pub use spool::{DEFAULT_RETENTION, SpoolConfig, SqliteSpool};

/// A boxed future, so that the log traits can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the log could not take or give records.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log cannot be written or read now (disk, broker...); nothing was appended.
    #[error("the log is unavailable: {0}")]
    Unavailable(String),
    /// The source name is not valid for the log.
    #[error("invalid source name `{0}`")]
    InvalidSource(String),
    /// What the log holds cannot be decoded (a record not written by sluice).
    #[error("corrupt log entry at {0}: {1}")]
    Corrupt(String, String),
    /// This consumer no longer owns a partition it tried to commit (another instance took it
    /// over): nothing was stored, and the commit's files must not be published.
    #[error("fenced: {0}")]
    Fenced(String),
}

impl LogError {
    /// `Unavailable` with `error`'s message: the log's backends map their failures with it.
    pub fn unavailable(error: impl std::fmt::Display) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// A durable, partitioned, append-only log with one stream per source.
pub trait RecordLog: Send + Sync {
    /// Appends the records of `run` to `source`'s stream, all with `provenance`, and resolves
    /// once they are durable with each record's position, in order. Either every record is
    /// appended or none is. Records go to their key's partition (keyless ones spread), and the
    /// records one append puts in one partition stay one run there.
    fn append<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        run: Run,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>>;

    /// Appends like [`append`](Self::append) and, in the same atomic write, remembers each of
    /// `answers` under its source, user and key (a request's Idempotency-Key, the ids of its
    /// records): either all are durable or none is. A run of no records only remembers the
    /// answers (a request whose records were all stored before).
    fn append_remembered<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        run: Run,
        answers: Vec<Remembered>,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>>;

    /// The answer remembered under `key` of `user` for `source`, while the log's idempotency
    /// window keeps it.
    fn remembered<'a>(
        &'a self,
        source: &'a str,
        user: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Remembered>, LogError>>;

    /// Whether the log is reachable and the last write succeeded.
    fn is_ready(&self) -> bool;

    /// A short name for status pages (`sqlite-spool`, `kafka`).
    fn kind(&self) -> &'static str;
}

/// The stream core's side of the log: reading a source's stream, committing consumer positions,
/// and the source's dead-letter queue.
pub trait StreamLog: RecordLog {
    /// Opens a consumer of `source`'s stream, reading nothing until [`LogConsumer::seek`].
    fn consumer<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Box<dyn LogConsumer>, LogError>>;

    /// Appends entries to `source`'s dead-letter queue; resolves once they are durable.
    fn dead_letter<'a>(&'a self, source: &'a str, entries: Vec<DeadLetter>) -> BoxFuture<'a, Result<(), LogError>>;

    /// Reads up to `max` dead letters of `source`, from sequence number `from`.
    fn dead_letters<'a>(
        &'a self,
        source: &'a str,
        from: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredDeadLetter>, LogError>>;

    /// The first dead-letter sequence number not yet replayed.
    fn replay_cursor<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<u64, LogError>>;

    /// Records that every dead letter of `source` below `next` has been replayed.
    fn set_replay_cursor<'a>(&'a self, source: &'a str, next: u64) -> BoxFuture<'a, Result<(), LogError>>;
}

/// A consumer position stored with the warehouse commit that decided it: every record of
/// `partition` below `next` is processed, and `commit` names the files that hold its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Log partition.
    pub partition: u32,
    /// The first position not processed.
    pub next: u64,
    /// The warehouse commit this position was stored for (`None`: stored without one, by an
    /// older sluice or a test).
    pub commit: Option<String>,
}

impl Committed {
    /// A position without a warehouse commit.
    pub fn at(partition: u32, next: u64) -> Self {
        Self { partition, next, commit: None }
    }
}

/// A change of the partitions a consumer owns, reported by [`LogConsumer::ownership_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// These partitions are this consumer's now: the stream recovers them, then reads them.
    Assigned(Vec<u32>),
    /// These partitions are no longer this consumer's: what it holds of them is dropped
    /// uncommitted (their new owner reads them again from the stored position).
    Revoked(Vec<u32>),
}

/// A reader of one source's stream. Within a partition, records come in offset order.
///
/// Which partitions a consumer reads is decided by the log: all of them for the embedded
/// spool, a share of them for a Kafka consumer group of several instances. Changes are
/// reported by [`ownership_changes`](Self::ownership_changes) before any record of a newly
/// assigned partition is returned.
pub trait LogConsumer: Send {
    /// Number of partitions of the stream.
    fn partitions(&self) -> u32;

    /// Ownership changes since the last call, oldest first. A poll returns early after a
    /// change, so that it is seen before the records that follow it.
    fn ownership_changes(&mut self) -> Vec<Ownership>;

    /// Reads `partition` from `offset` on (forgetting anything read before). Records of the
    /// partition below `offset` are never returned after this.
    fn seek(&mut self, partition: u32, offset: u64) -> BoxFuture<'_, Result<(), LogError>>;

    /// The next runs of any partition, at most `max` records in all (a stored run is cut where
    /// the limit falls, or where the consumer's position is); waits up to `wait` when there are
    /// none (an empty result then means nothing arrived in time).
    fn poll(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<StoredRun>, LogError>>;

    /// Stores consumer positions, all or none. This is the decision of the warehouse commits
    /// they name: a consumer that no longer owns one of the partitions (another instance took
    /// it over, even while this one was paused) stores nothing and fails with
    /// [`LogError::Fenced`].
    fn commit(&mut self, positions: Vec<Committed>) -> BoxFuture<'_, Result<(), LogError>>;

    /// The stored position of each of `partitions` that has one.
    fn committed(&mut self, partitions: Vec<u32>) -> BoxFuture<'_, Result<Vec<Committed>, LogError>>;
}

/// A token no other call returns, in this process or another: 16 hex digits from a hasher the
/// operating system seeds, over a per-process counter and the process id. Names writers and
/// claim holders (a fenced writer's files, a claim only its holder releases).
pub fn unique_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// How long to wait before retry `attempt` (0-based) of something unavailable: 100 ms doubling
/// up to 10 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(7))).min(Duration::from_secs(10))
}
