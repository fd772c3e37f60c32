//! The embedded log: an SQLite file in WAL mode with `synchronous = FULL`, written by one thread
//! that groups concurrent appends into one transaction (group commit).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

use crate::dead_letter::{DeadLetter, DeadLetterMeta, StoredDeadLetter};
use crate::record::{LogRecord, Position, Provenance, Run, StoredRecord, StoredRun, partition_for};
use crate::remembered::{self, Remembered};
use crate::retention::{self, Trimmed};
use crate::run;
use crate::tail::{TAIL_BUDGET, Tail};
use crate::{BoxFuture, Committed, LogConsumer, LogError, Ownership, RecordLog, StreamLog};

/// Settings of the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// Partitions per source (default 4).
    pub partitions: u32,
    /// How long answers given under an idempotency key are remembered (default a day).
    pub idempotency_window: Duration,
    /// How long a record is kept after every consumer has passed it (default an hour; zero
    /// trims as soon as the stream has committed it to the warehouse).
    pub retention: Duration,
    /// How often the trimmer runs (default every 10 s; `None`: never, trim with
    /// [`SqliteSpool::trim`]).
    pub trim_every: Option<Duration>,
}

impl SpoolConfig {
    /// Defaults with the given file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            partitions: 4,
            idempotency_window: crate::DEFAULT_IDEMPOTENCY_WINDOW,
            retention: DEFAULT_RETENTION,
            trim_every: Some(Duration::from_secs(10)),
        }
    }
}

struct Append {
    source: String,
    provenance: Provenance,
    run: Run,
    /// The answers to remember with the records (the request's idempotency key, its records' ids).
    answers: Vec<Remembered>,
    reply: oneshot::Sender<Result<Vec<Position>, LogError>>,
}

/// How long a committed record stays in the spool by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);

/// The SQLite-backed log.
pub struct SqliteSpool {
    tx: mpsc::Sender<Append>,
    ready: Arc<AtomicBool>,
    path: PathBuf,
    partitions: u32,
    /// Counts committed appends, so consumers wait for news instead of polling.
    appended: watch::Receiver<u64>,
    /// The runs committed last, which consumers take without reading the file.
    tail: Arc<Tail>,
    /// A connection for the stream core's small writes (dead letters, positions).
    side: Arc<Mutex<Connection>>,
    idempotency_window: Duration,
    retention: Duration,
    /// Dropped with the spool: the trimmer thread stops.
    _trimmer: Option<mpsc::Sender<()>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    source       TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    first        INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    keys         BLOB,
    payloads     BLOB NOT NULL,
    ends         BLOB NOT NULL,
    provenance   TEXT NOT NULL,
    appended_us  INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_position ON runs (source, partition, first);
CREATE INDEX IF NOT EXISTS runs_by_age ON runs (source, partition, first, count, appended_us);
CREATE TABLE IF NOT EXISTS partition_ends (
    source    TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next      INTEGER NOT NULL,
    PRIMARY KEY (source, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumer_positions (
    source    TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next      INTEGER NOT NULL,
    commit_id TEXT,
    PRIMARY KEY (source, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    source       TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    key          TEXT,
    content_type TEXT NOT NULL,
    payload      BLOB NOT NULL,
    provenance   TEXT NOT NULL,
    meta         TEXT NOT NULL,
    PRIMARY KEY (source, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replay_cursors (
    source TEXT PRIMARY KEY NOT NULL,
    next   INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Runs blocking SQLite work off the async threads.
async fn blocking<T: Send + 'static>(
    conn: &Arc<Mutex<Connection>>,
    work: impl FnOnce(&mut Connection) -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || work(&mut conn.lock().unwrap_or_else(|e| e.into_inner())))
        .await
        .map_err(LogError::unavailable)?
}

pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The write-ahead log is cut back to this size when it restarts after a checkpoint (it
    // grows past it under load, while readers hold old snapshots); without it, it keeps its
    // largest size for good, and on a nearly full disk that is the room the stream needs.
    conn.pragma_update(None, "journal_size_limit", retention::WAL_LIMIT as i64)?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(remembered::SCHEMA)?;
    add_commit_ids(&conn)?;
    Ok(conn)
}

/// Gives the consumer positions of a spool written before warehouse commits were decided by
/// the stored position the column naming that commit.
fn add_commit_ids(conn: &Connection) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('consumer_positions') WHERE name = 'commit_id'",
        [],
        |r| r.get(0),
    )?;
    if present {
        return Ok(());
    }
    match conn.execute_batch("ALTER TABLE consumer_positions ADD COLUMN commit_id TEXT") {
        // Another connection added it meanwhile.
        Err(rusqlite::Error::SqliteFailure(_, Some(message))) if message.contains("duplicate column") => Ok(()),
        other => other,
    }
}

/// Brings a spool written by an older sluice up to date: every partition's next offset is kept
/// apart from its records (so trimming never lets an offset be reused), and records stored one
/// row each (before runs) become runs of one record, a chunk per transaction.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let has_records: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records')",
        [],
        |r| r.get(0),
    )?;
    if has_records {
        let has_time: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('records') WHERE name = 'appended_us')",
            [],
            |r| r.get(0),
        )?;
        if !has_time {
            conn.execute_batch("ALTER TABLE records ADD COLUMN appended_us INTEGER")?;
        }
        conn.execute_batch(
            "INSERT OR IGNORE INTO partition_ends (source, partition, next)
             SELECT source, partition, MAX(offset) + 1 FROM records GROUP BY source, partition",
        )?;
        while move_records_to_runs(conn)? > 0 {}
        conn.execute_batch("DROP TABLE records")?;
    }
    conn.execute_batch(
        "INSERT OR IGNORE INTO partition_ends (source, partition, next)
         SELECT source, partition, MAX(first + count) FROM runs GROUP BY source, partition",
    )
}

/// Moves up to 20,000 records of the old one-row-per-record table into runs of one.
fn move_records_to_runs(conn: &mut Connection) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let moved = {
        let mut select = tx.prepare(
            "SELECT source, partition, offset, key, content_type, payload, provenance, COALESCE(appended_us, 0)
             FROM records ORDER BY source, partition, offset LIMIT 20000",
        )?;
        let mut insert = tx.prepare_cached(INSERT_RUN)?;
        let mut delete = tx.prepare("DELETE FROM records WHERE source = ?1 AND partition = ?2 AND offset = ?3")?;
        let mut rows = select.query([])?;
        let mut moved = 0;
        while let Some(row) = rows.next()? {
            let (source, partition, offset): (String, u32, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let content_type: String = row.get(4)?;
            let payload: Vec<u8> = row.get(5)?;
            let run = Run::single(row.get(3)?, content_type, &payload);
            let provenance: String = row.get(6)?;
            let appended_us: i64 = row.get(7)?;
            let first = Position { partition, offset: offset as u64 };
            insert_run(
                &mut insert,
                &source,
                first,
                &run.content_type,
                &run::Blobs::of(&run),
                &provenance,
                appended_us,
            )?;
            delete.execute(params![source, partition, offset])?;
            moved += 1;
        }
        moved
    };
    tx.commit()?;
    Ok(moved)
}

/// Stores one run (see [`crate::run`]).
const INSERT_RUN: &str = "INSERT INTO runs
    (source, partition, first, count, content_type, keys, payloads, ends, provenance, appended_us)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Stores a run of `source` at `first` with [`INSERT_RUN`].
fn insert_run(
    insert: &mut rusqlite::CachedStatement<'_>,
    source: &str,
    first: Position,
    content_type: &str,
    blobs: &run::Blobs<'_>,
    provenance: &str,
    appended_us: i64,
) -> rusqlite::Result<()> {
    insert.execute(params![
        source,
        first.partition,
        first.offset as i64,
        blobs.count as i64,
        content_type,
        blobs.keys,
        blobs.payloads,
        blobs.ends,
        provenance,
        appended_us
    ])?;
    Ok(())
}

/// Trims every `every` until the spool is dropped.
fn start_trimmer(path: PathBuf, retention: Duration, every: Duration) -> Result<mpsc::Sender<()>, LogError> {
    let (stop, stopped) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("sluice-spool-trim".into())
        .spawn(move || {
            let mut conn = None;
            let mut pacing = retention::Pacing::default();
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let started = std::time::Instant::now();
                let result = match &conn {
                    Some(conn) => retention::trim(conn, retention, &mut pacing),
                    None => open(&path).and_then(|c| retention::trim(conn.insert(c), retention, &mut pacing)),
                };
                match result {
                    Ok(trimmed) if trimmed.records + trimmed.dead_letters > 0 => {
                        tracing::debug!(
                            records = trimmed.records,
                            dead_letters = trimmed.dead_letters,
                            pages_freed = trimmed.pages_freed,
                            took_ms = started.elapsed().as_millis() as u64,
                            "trimmed the spool"
                        );
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "trimming the spool failed; trying again later"),
                }
            }
        })
        .map_err(|e| LogError::Unavailable(e.to_string()))?;
    Ok(stop)
}

impl SqliteSpool {
    /// Opens (creating if needed) the spool file and starts its writer thread.
    pub fn open(config: SpoolConfig) -> Result<Self, LogError> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| LogError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = open(&config.path).map_err(LogError::unavailable)?;
        migrate(&mut conn).map_err(LogError::unavailable)?;
        let (tx, rx) = mpsc::channel::<Append>();
        let ready = Arc::new(AtomicBool::new(true));
        let (notify, appended) = watch::channel(0u64);
        let partitions = config.partitions.max(1);
        let tail = Arc::new(Tail::new(TAIL_BUDGET));
        let writer = Writer {
            conn,
            tail: tail.clone(),
            partitions,
            ready: ready.clone(),
            round_robin: 0,
            notify,
            idempotency_window: config.idempotency_window,
            trimmed_at: None,
        };
        thread::Builder::new()
            .name("sluice-spool".into())
            .spawn(move || writer.run(&rx))
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        let side = Arc::new(Mutex::new(open(&config.path).map_err(LogError::unavailable)?));
        let trimmer = match config.trim_every {
            Some(every) => Some(start_trimmer(config.path.clone(), config.retention, every)?),
            None => None,
        };
        Ok(Self {
            tx,
            ready,
            path: config.path,
            partitions,
            appended,
            tail,
            side,
            idempotency_window: config.idempotency_window,
            retention: config.retention,
            _trimmer: trimmer,
        })
    }

    /// Deletes now what every consumer has passed and the retention no longer keeps, and hands
    /// the space back (the trimmer does this every `trim_every`).
    pub async fn trim(&self) -> Result<Trimmed, LogError> {
        let retention = self.retention;
        blocking(&self.side, move |conn| {
            retention::trim(conn, retention, &mut retention::Pacing::default()).map_err(LogError::unavailable)
        })
        .await
    }

    /// Records the spool holds now, across sources.
    pub async fn stored_records(&self) -> Result<u64, LogError> {
        blocking(&self.side, |conn| {
            conn.query_row("SELECT COALESCE(SUM(count), 0) FROM runs", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(LogError::unavailable)
        })
        .await
    }

    /// Reads up to `max` records of `source` from `partition` starting at offset `from`.
    pub fn read(&self, source: &str, partition: u32, from: u64, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        let conn = self.side.lock().unwrap_or_else(|e| e.into_inner());
        let runs = read_runs(&conn, source, partition, from, max)?;
        Ok(runs.iter().flat_map(StoredRun::records).collect())
    }

    /// The number of partitions per source.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }
}

/// Reads `source`'s runs of `partition` from offset `from` on, at most `max` records (the
/// first run cut to start at `from`, the last one to end at the limit).
fn read_runs(
    conn: &Connection,
    source: &str,
    partition: u32,
    from: u64,
    max: usize,
) -> Result<Vec<StoredRun>, LogError> {
    // The run holding `from` and the ones after it; a run's payloads are only read once it
    // is known to hold records at or after `from`.
    let mut statement = conn
        .prepare_cached(
            "SELECT first, count, content_type, keys, payloads, ends, provenance FROM runs
             WHERE source = ?1 AND partition = ?2
               AND first >= COALESCE(
                   (SELECT MAX(first) FROM runs WHERE source = ?1 AND partition = ?2 AND first <= ?3), 0)
               AND first + count > ?3
             ORDER BY first",
        )
        .map_err(LogError::unavailable)?;
    let mut rows = statement.query(params![source, partition, from as i64]).map_err(LogError::unavailable)?;
    let mut out: Vec<StoredRun> = Vec::new();
    let mut records = 0;
    // Runs of one request carry the same provenance: parse it once and share it.
    let mut last: Option<(String, Arc<Provenance>)> = None;
    while records < max {
        let Some(row) = rows.next().map_err(LogError::unavailable)? else { break };
        let first = row.get::<_, i64>(0).map_err(LogError::unavailable)? as u64;
        let at = || format!("{source}/{partition}/{first}");
        let text: String = row.get(6).map_err(LogError::unavailable)?;
        let provenance = match &last {
            Some((previous, parsed)) if *previous == text => parsed.clone(),
            _ => {
                let parsed: Arc<Provenance> =
                    Arc::new(serde_json::from_str(&text).map_err(|e| LogError::Corrupt(at(), e.to_string()))?);
                last = Some((text, parsed.clone()));
                parsed
            }
        };
        let count = row.get::<_, i64>(1).map_err(LogError::unavailable)? as usize;
        let stored = run::from_row(
            row.get(2).map_err(LogError::unavailable)?,
            count,
            row.get(3).map_err(LogError::unavailable)?,
            row.get(4).map_err(LogError::unavailable)?,
            row.get(5).map_err(LogError::unavailable)?,
        )
        .map_err(|e| LogError::Corrupt(at(), e.to_string()))?;
        let mut stored = StoredRun { partition, first, run: stored, provenance };
        if from > first {
            let skip = (from - first) as usize;
            stored = StoredRun { first: from, run: stored.run.tail(skip), ..stored };
        }
        if records + stored.len() > max {
            stored.split_off(max - records);
        }
        records += stored.len();
        out.push(stored);
    }
    Ok(out)
}

impl SqliteSpool {
    /// Hands an append to the writer thread and waits until it is durable.
    async fn send(
        &self,
        source: &str,
        provenance: &Provenance,
        run: Run,
        answers: Vec<Remembered>,
    ) -> Result<Vec<Position>, LogError> {
        let (reply, wait) = oneshot::channel();
        let request = Append { source: source.to_string(), provenance: provenance.clone(), run, answers, reply };
        self.tx.send(request).map_err(|_| LogError::Unavailable("the spool writer stopped".into()))?;
        wait.await.map_err(|_| LogError::Unavailable("the spool writer stopped".into()))?
    }
}

impl RecordLog for SqliteSpool {
    fn append<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        run: Run,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>> {
        Box::pin(self.send(source, provenance, run, Vec::new()))
    }

    fn append_remembered<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        run: Run,
        answers: Vec<Remembered>,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>> {
        Box::pin(self.send(source, provenance, run, answers))
    }

    fn remembered<'a>(
        &'a self,
        source: &'a str,
        user: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Remembered>, LogError>> {
        let (source, user, key, window) =
            (source.to_string(), user.to_string(), key.to_string(), self.idempotency_window);
        Box::pin(blocking(&self.side, move |conn| {
            remembered::get(conn, &source, &user, &key, window).map_err(LogError::unavailable)
        }))
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    fn kind(&self) -> &'static str {
        "sqlite-spool"
    }
}

impl StreamLog for SqliteSpool {
    fn consumer<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Box<dyn LogConsumer>, LogError>> {
        Box::pin(async move {
            let conn = open(&self.path).map_err(LogError::unavailable)?;
            // Partitions written under an earlier, larger `log.partitions` are read too (new
            // records are keyed to the configured count): lowering it after a crash must not
            // strand the records those partitions still hold.
            let written: Option<i64> = conn
                .query_row("SELECT MAX(partition) FROM partition_ends WHERE source = ?1", [source], |row| row.get(0))
                .map_err(LogError::unavailable)?;
            let partitions = written.map_or(0, |last| last as u32 + 1).max(self.partitions);
            if partitions > self.partitions {
                tracing::warn!(
                    source,
                    configured = self.partitions,
                    in_the_spool = partitions,
                    "the spool holds partitions beyond log.partitions; they are read as well, and new records \
                     go to the configured ones"
                );
            }
            let consumer = SpoolConsumer {
                conn: Arc::new(Mutex::new(conn)),
                source: source.to_string(),
                partitions,
                next: vec![None; partitions as usize],
                announced: false,
                appended: self.appended.clone(),
                tail: self.tail.clone(),
                start: 0,
            };
            Ok(Box::new(consumer) as Box<dyn LogConsumer>)
        })
    }

    fn dead_letter<'a>(&'a self, source: &'a str, entries: Vec<DeadLetter>) -> BoxFuture<'a, Result<(), LogError>> {
        let source = source.to_string();
        Box::pin(blocking(&self.side, move |conn| {
            let tx = conn.transaction().map_err(LogError::unavailable)?;
            let next: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(sequence) + 1, 0) FROM dead_letters WHERE source = ?1",
                    [&source],
                    |r| r.get(0),
                )
                .map_err(LogError::unavailable)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO dead_letters (source, sequence, key, content_type, payload, provenance, meta)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(LogError::unavailable)?;
                for (i, entry) in entries.iter().enumerate() {
                    let provenance =
                        serde_json::to_string(entry.record.provenance.as_ref()).expect("provenance serializes");
                    let meta = serde_json::to_string(&DeadLetterMeta::of(entry)).expect("metadata serializes");
                    let record = &entry.record.record;
                    insert
                        .execute(params![
                            source,
                            next + i as i64,
                            record.key,
                            record.content_type,
                            record.payload,
                            provenance,
                            meta
                        ])
                        .map_err(LogError::unavailable)?;
                }
            }
            tx.commit().map_err(LogError::unavailable)
        }))
    }

    fn dead_letters<'a>(
        &'a self,
        source: &'a str,
        from: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredDeadLetter>, LogError>> {
        let source = source.to_string();
        Box::pin(blocking(&self.side, move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT sequence, key, content_type, payload, provenance, meta FROM dead_letters
                     WHERE source = ?1 AND sequence >= ?2 ORDER BY sequence LIMIT ?3",
                )
                .map_err(LogError::unavailable)?;
            let rows = statement
                .query_map(params![source, from as i64, max as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })
                .map_err(LogError::unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (sequence, key, content_type, payload, provenance, meta) = row.map_err(LogError::unavailable)?;
                let at = || format!("{source} dead letter {sequence}");
                let provenance: Provenance =
                    serde_json::from_str(&provenance).map_err(|e| LogError::Corrupt(at(), e.to_string()))?;
                let provenance = Arc::new(provenance);
                let meta: DeadLetterMeta =
                    serde_json::from_str(&meta).map_err(|e| LogError::Corrupt(at(), e.to_string()))?;
                out.push(StoredDeadLetter {
                    sequence: sequence as u64,
                    entry: DeadLetter {
                        record: StoredRecord {
                            position: meta.position,
                            record: LogRecord { key, content_type, payload },
                            provenance,
                        },
                        reason: meta.reason,
                        field: meta.field,
                        plugin: meta.plugin,
                        failed_at_us: meta.failed_at_us,
                    },
                });
            }
            Ok(out)
        }))
    }

    fn replay_cursor<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<u64, LogError>> {
        let source = source.to_string();
        Box::pin(blocking(&self.side, move |conn| {
            let next: Option<i64> = conn
                .query_row("SELECT next FROM replay_cursors WHERE source = ?1", [&source], |r| r.get(0))
                .optional()
                .map_err(LogError::unavailable)?;
            Ok(next.unwrap_or(0) as u64)
        }))
    }

    fn set_replay_cursor<'a>(&'a self, source: &'a str, next: u64) -> BoxFuture<'a, Result<(), LogError>> {
        let source = source.to_string();
        Box::pin(blocking(&self.side, move |conn| {
            conn.execute(
                "INSERT INTO replay_cursors (source, next) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET next = excluded.next",
                params![source, next as i64],
            )
            .map(|_| ())
            .map_err(LogError::unavailable)
        }))
    }
}

/// Reads one source's partitions of the spool.
struct SpoolConsumer {
    conn: Arc<Mutex<Connection>>,
    source: String,
    partitions: u32,
    /// Next offset to read per partition; `None` until seeked.
    next: Vec<Option<u64>>,
    /// Whether the consumer has said that every partition is its own (the spool has one
    /// consumer per source).
    announced: bool,
    appended: watch::Receiver<u64>,
    /// Runs just committed, taken before the file is read.
    tail: Arc<Tail>,
    /// Partition the next poll starts with, so that every partition gets its turn.
    start: usize,
}

impl SpoolConsumer {
    async fn read_once(&mut self, max: usize) -> Result<Vec<StoredRun>, LogError> {
        let start = self.start;
        let count = self.next.len();
        self.start = (self.start + 1) % count.max(1);
        // Partitions in turn from `start`: what the tail holds is taken from it, the rest is
        // read from the file.
        let mut runs: Vec<StoredRun> = Vec::new();
        let mut records = 0;
        let mut from_file: Vec<(u32, u64)> = Vec::new();
        for i in 0..count {
            let partition = (start + i) % count;
            let Some(from) = self.next[partition] else { continue };
            if records >= max {
                break;
            }
            match self.tail.take(&self.source, partition as u32, from, max - records) {
                Some(taken) => {
                    records += taken.iter().map(StoredRun::len).sum::<usize>();
                    runs.extend(taken);
                }
                None => from_file.push((partition as u32, from)),
            }
        }
        if !from_file.is_empty() && records < max {
            let source = self.source.clone();
            let left = max - records;
            let read = blocking(&self.conn, move |conn| {
                let mut out: Vec<StoredRun> = Vec::new();
                let mut records = 0;
                for (partition, from) in from_file {
                    if records >= left {
                        break;
                    }
                    let runs = read_runs(conn, &source, partition, from, left - records)?;
                    records += runs.iter().map(StoredRun::len).sum::<usize>();
                    out.extend(runs);
                }
                Ok(out)
            })
            .await?;
            runs.extend(read);
        }
        for run in &runs {
            self.next[run.partition as usize] = Some(run.end());
        }
        Ok(runs)
    }
}

impl LogConsumer for SpoolConsumer {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn ownership_changes(&mut self) -> Vec<Ownership> {
        if std::mem::replace(&mut self.announced, true) {
            return Vec::new();
        }
        vec![Ownership::Assigned((0..self.partitions).collect())]
    }

    fn seek(&mut self, partition: u32, offset: u64) -> BoxFuture<'_, Result<(), LogError>> {
        Box::pin(async move {
            let slot = self
                .next
                .get_mut(partition as usize)
                .ok_or_else(|| LogError::Unavailable(format!("no partition {partition}")))?;
            *slot = Some(offset);
            Ok(())
        })
    }

    fn poll(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<StoredRun>, LogError>> {
        Box::pin(async move {
            self.appended.borrow_and_update();
            let records = self.read_once(max).await?;
            if !records.is_empty() {
                return Ok(records);
            }
            match tokio::time::timeout(wait, self.appended.changed()).await {
                Ok(Ok(())) => self.read_once(max).await,
                // Timed out, or the writer is gone (nothing more can arrive).
                _ => Ok(Vec::new()),
            }
        })
    }

    fn commit(&mut self, positions: Vec<Committed>) -> BoxFuture<'_, Result<(), LogError>> {
        let source = self.source.clone();
        Box::pin(blocking(&self.conn, move |conn| {
            let tx = conn.transaction().map_err(LogError::unavailable)?;
            for position in positions {
                tx.execute(
                    "INSERT INTO consumer_positions (source, partition, next, commit_id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (source, partition) DO UPDATE SET next = excluded.next, commit_id = excluded.commit_id",
                    params![source, position.partition, position.next as i64, position.commit],
                )
                .map_err(LogError::unavailable)?;
            }
            tx.commit().map_err(LogError::unavailable)
        }))
    }

    fn committed(&mut self, partitions: Vec<u32>) -> BoxFuture<'_, Result<Vec<Committed>, LogError>> {
        let source = self.source.clone();
        Box::pin(blocking(&self.conn, move |conn| {
            let mut statement = conn
                .prepare(
                    "SELECT partition, next, commit_id FROM consumer_positions WHERE source = ?1 ORDER BY partition",
                )
                .map_err(LogError::unavailable)?;
            let rows = statement
                .query_map([&source], |r| {
                    Ok(Committed { partition: r.get(0)?, next: r.get::<_, i64>(1)? as u64, commit: r.get(2)? })
                })
                .map_err(LogError::unavailable)?;
            let all = rows.collect::<Result<Vec<_>, _>>().map_err(LogError::unavailable)?;
            Ok(all.into_iter().filter(|c| partitions.contains(&c.partition)).collect())
        }))
    }
}

/// The only writer of records in this process. Next offsets are read inside each (immediate)
/// transaction, so another process appending to the same file (`sluice dlq replay` while
/// `sluice serve` runs) cannot collide with it.
struct Writer {
    conn: Connection,
    /// Where each committed run goes for the consumers.
    tail: Arc<Tail>,
    partitions: u32,
    ready: Arc<AtomicBool>,
    round_robin: u64,
    notify: watch::Sender<u64>,
    idempotency_window: Duration,
    /// When expired idempotency answers were last deleted.
    trimmed_at: Option<std::time::Instant>,
}

/// A source's runs as one append stored them, one per partition.
type SourceRuns = (String, Vec<StoredRun>);

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Append>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < 256 {
                match rx.try_recv() {
                    Ok(more) => group.push(more),
                    Err(_) => break,
                }
            }
            match self.write(&mut group) {
                Ok((positions, stored)) => {
                    // In the tail before the consumers hear of the commit.
                    for (source, runs) in stored {
                        self.tail.push(&source, runs);
                    }
                    self.ready.store(true, Ordering::SeqCst);
                    self.notify.send_modify(|n| *n += 1);
                    for (append, positions) in group.into_iter().zip(positions) {
                        let _ = append.reply.send(Ok(positions));
                    }
                }
                Err(error) => {
                    // Nothing of the group was committed.
                    self.ready.store(false, Ordering::SeqCst);
                    tracing::error!(%error, "spool write failed");
                    for append in group {
                        let _ = append.reply.send(Err(LogError::Unavailable(error.to_string())));
                    }
                }
            }
        }
    }

    /// Writes `group` in one transaction: the positions of each append's records, and its runs
    /// as stored (one per partition it reached), for the tail once the transaction commits.
    /// The appends' runs are moved out.
    fn write(&mut self, group: &mut [Append]) -> rusqlite::Result<(Vec<Vec<Position>>, Vec<SourceRuns>)> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut all = Vec::with_capacity(group.len());
        let mut stored = Vec::with_capacity(group.len());
        let mut next: HashMap<(String, u32), u64> = HashMap::new();
        {
            let mut max = tx.prepare_cached(
                "SELECT COALESCE(
                    (SELECT next FROM partition_ends WHERE source = ?1 AND partition = ?2),
                    (SELECT MAX(first + count) FROM runs WHERE source = ?1 AND partition = ?2),
                    0)",
            )?;
            let mut insert = tx.prepare_cached(INSERT_RUN)?;
            let appended_us = remembered::now_us();
            for append in group.iter_mut() {
                let provenance = serde_json::to_string(&append.provenance).expect("provenance serializes");
                let shared = Arc::new(append.provenance.clone());
                let mut run = std::mem::take(&mut append.run);
                let mut positions = Vec::with_capacity(run.len());
                // The request's records of each partition, in order.
                let mut by_partition: Vec<Vec<usize>> = vec![Vec::new(); self.partitions as usize];
                for index in 0..run.len() {
                    self.round_robin += 1;
                    let partition = partition_for(run.key(index), self.partitions, self.round_robin);
                    by_partition[partition as usize].push(index);
                    let slot = match next.entry((append.source.clone(), partition)) {
                        std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            let first: i64 = max.query_row(params![append.source, partition], |r| r.get(0))?;
                            slot.insert(first as u64)
                        }
                    };
                    positions.push(Position { partition, offset: *slot });
                    *slot += 1;
                }
                let mut runs = Vec::new();
                for indexes in by_partition.iter().filter(|indexes| !indexes.is_empty()) {
                    let first = positions[indexes[0]];
                    // All of the request in one partition: stored as it came.
                    let part = if indexes.len() == run.len() {
                        std::mem::take(&mut run)
                    } else {
                        run::take_part(&mut run, indexes)
                    };
                    insert_run(
                        &mut insert,
                        &append.source,
                        first,
                        &part.content_type,
                        &run::Blobs::of(&part),
                        &provenance,
                        appended_us,
                    )?;
                    runs.push(StoredRun {
                        partition: first.partition,
                        first: first.offset,
                        run: part,
                        provenance: shared.clone(),
                    });
                }
                for answer in &append.answers {
                    remembered::insert(&tx, answer)?;
                }
                all.push(positions);
                stored.push((append.source.clone(), runs));
            }
            let mut end = tx.prepare_cached(
                "INSERT INTO partition_ends (source, partition, next) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source, partition) DO UPDATE SET next = excluded.next",
            )?;
            for ((source, partition), next) in &next {
                end.execute(params![source, partition, *next as i64])?;
            }
        }
        // Expired answers go once a minute, in the transaction that is being written anyway.
        if self.trimmed_at.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
            remembered::trim(&tx, self.idempotency_window)?;
            self.trimmed_at = Some(std::time::Instant::now());
        }
        tx.commit()?;
        Ok((all, stored))
    }
}
