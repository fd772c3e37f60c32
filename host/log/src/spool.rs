//! The embedded log: an SQLite file in WAL mode with `synchronous = FULL`, written by one thread
//! that groups concurrent appends into one transaction (group commit).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::record::{LogRecord, Position, Provenance, StoredRecord, partition_for};
use crate::{BoxFuture, LogError, RecordLog};

/// Settings of the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// Partitions per source (default 4).
    pub partitions: u32,
}

impl SpoolConfig {
    /// Defaults with the given file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), partitions: 4 }
    }
}

struct Append {
    source: String,
    provenance: Provenance,
    records: Vec<LogRecord>,
    reply: oneshot::Sender<Result<Vec<Position>, LogError>>,
}

/// The SQLite-backed log.
pub struct SqliteSpool {
    tx: mpsc::Sender<Append>,
    ready: Arc<AtomicBool>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    source       TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    offset       INTEGER NOT NULL,
    key          TEXT,
    content_type TEXT NOT NULL,
    payload      BLOB NOT NULL,
    provenance   TEXT NOT NULL,
    PRIMARY KEY (source, partition, offset)
) WITHOUT ROWID;
";

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

impl SqliteSpool {
    /// Opens (creating if needed) the spool file and starts its writer thread.
    pub fn open(config: SpoolConfig) -> Result<Self, LogError> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| LogError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let conn = open(&config.path).map_err(|e| LogError::Unavailable(e.to_string()))?;
        let mut next: HashMap<(String, u32), u64> = HashMap::new();
        {
            let mut statement = conn
                .prepare("SELECT source, partition, MAX(offset) FROM records GROUP BY source, partition")
                .map_err(|e| LogError::Unavailable(e.to_string()))?;
            let rows = statement
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, i64>(2)?)))
                .map_err(|e| LogError::Unavailable(e.to_string()))?;
            for row in rows {
                let (source, partition, max) = row.map_err(|e| LogError::Unavailable(e.to_string()))?;
                next.insert((source, partition), max as u64 + 1);
            }
        }
        let (tx, rx) = mpsc::channel::<Append>();
        let ready = Arc::new(AtomicBool::new(true));
        let writer = Writer { conn, next, partitions: config.partitions.max(1), ready: ready.clone(), round_robin: 0 };
        thread::Builder::new()
            .name("sluice-spool".into())
            .spawn(move || writer.run(&rx))
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        Ok(Self { tx, ready, path: config.path })
    }

    /// Reads up to `max` records of `source` from `partition` starting at offset `from`.
    pub fn read(&self, source: &str, partition: u32, from: u64, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        let conn = open(&self.path).map_err(|e| LogError::Unavailable(e.to_string()))?;
        let mut statement = conn
            .prepare(
                "SELECT offset, key, content_type, payload, provenance FROM records
                 WHERE source = ?1 AND partition = ?2 AND offset >= ?3 ORDER BY offset LIMIT ?4",
            )
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        let rows = statement
            .query_map(params![source, partition, from as i64, max as i64], |r| {
                let provenance: String = r.get(4)?;
                Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, provenance))
            })
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        let mut out = Vec::new();
        for row in rows {
            let (offset, key, content_type, payload, provenance) =
                row.map_err(|e| LogError::Unavailable(e.to_string()))?;
            let provenance: Provenance = serde_json::from_str(&provenance)
                .map_err(|e| LogError::Unavailable(format!("corrupt provenance: {e}")))?;
            out.push(StoredRecord {
                position: Position { partition, offset: offset as u64 },
                record: LogRecord { key, content_type, payload },
                provenance,
            });
        }
        Ok(out)
    }
}

impl RecordLog for SqliteSpool {
    fn append<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        records: Vec<LogRecord>,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>> {
        Box::pin(async move {
            let (reply, wait) = oneshot::channel();
            let request = Append { source: source.to_string(), provenance: provenance.clone(), records, reply };
            self.tx.send(request).map_err(|_| LogError::Unavailable("the spool writer stopped".into()))?;
            wait.await.map_err(|_| LogError::Unavailable("the spool writer stopped".into()))?
        })
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    fn kind(&self) -> &'static str {
        "sqlite-spool"
    }
}

struct Writer {
    conn: Connection,
    next: HashMap<(String, u32), u64>,
    partitions: u32,
    ready: Arc<AtomicBool>,
    round_robin: u64,
}

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
            let saved = self.next.clone();
            match self.write(&group) {
                Ok(positions) => {
                    self.ready.store(true, Ordering::SeqCst);
                    for (append, positions) in group.into_iter().zip(positions) {
                        let _ = append.reply.send(Ok(positions));
                    }
                }
                Err(error) => {
                    // Nothing of the group was committed: offsets go back to where they were.
                    self.next = saved;
                    self.ready.store(false, Ordering::SeqCst);
                    tracing::error!(%error, "spool write failed");
                    for append in group {
                        let _ = append.reply.send(Err(LogError::Unavailable(error.to_string())));
                    }
                }
            }
        }
    }

    fn write(&mut self, group: &[Append]) -> rusqlite::Result<Vec<Vec<Position>>> {
        let tx = self.conn.transaction()?;
        let mut all = Vec::with_capacity(group.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO records (source, partition, offset, key, content_type, payload, provenance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for append in group {
                let provenance = serde_json::to_string(&append.provenance).expect("provenance serializes");
                let mut positions = Vec::with_capacity(append.records.len());
                for record in &append.records {
                    self.round_robin += 1;
                    let partition = partition_for(record.key.as_deref(), self.partitions, self.round_robin);
                    let next = self.next.entry((append.source.clone(), partition)).or_insert(0);
                    let offset = *next;
                    *next += 1;
                    insert.execute(params![
                        append.source,
                        partition,
                        offset as i64,
                        record.key,
                        record.content_type,
                        record.payload,
                        provenance
                    ])?;
                    positions.push(Position { partition, offset });
                }
                all.push(positions);
            }
        }
        tx.commit()?;
        Ok(all)
    }
}
