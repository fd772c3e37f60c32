//! The stream core: for every source, consume its log, transform batches with its plugin, and
//! commit typed Parquet to the warehouse exactly once; what the plugin refuses goes to the
//! source's dead-letter queue.
//!
//! Exactly once: each log partition's rows are held in an open segment and committed as one
//! set of files whose names carry the offset range and the writer's token (see
//! `sluice-warehouse`): uploaded hidden, decided by storing the consumer position with the
//! commit's id (a write the log fences, so an instance that lost the partition cannot), then
//! renamed into place. A partition this stream is given (at start, or from another instance)
//! is recovered first: the decided commit finished, other hidden files removed; it resumes at
//! the stored position. A crash, a pause or a rebalance at any point neither loses nor repeats
//! a row.

mod convert;
mod known;
mod schema;
mod segment;
mod transform;
mod worker;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use sluice_log::{StreamLog, backoff};
use sluice_runtime::SourceTable;
use sluice_warehouse::{PartitionDir, Warehouse};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use convert::{Input, Producer, table_batch};
pub use known::TableSchemas;
pub use schema::{
    INGEST_OFFSET, INGEST_PARTITION, INGEST_PLUGIN, INGEST_PLUGIN_DIGEST, INGEST_RECEIVED_AT, INGEST_REQUEST_ID,
    INGEST_SOURCE, INGEST_USER, arrow_type, batch_schema, check_evolution, partitioning_fault, provenance_fields,
    table_definition, table_schema,
};
pub use transform::{NO_OUTCOME, Outcome, transform};
pub use worker::StreamError;

/// Per (source, log partition), the first offset not yet committed to the warehouse.
pub type Positions = BTreeMap<(String, u32), u64>;

/// `[stream]`: how the stream batches records and rolls files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Records read from the log per plugin call.
    pub batch_records: usize,
    /// Commit a log partition's files once they hold this many rows...
    pub roll_records: usize,
    /// ... or this much Arrow memory...
    pub roll_size: ByteSize,
    /// ... or once the oldest row waited this long...
    #[serde(with = "humantime_serde")]
    pub roll_interval: Duration,
    /// ... or once no record arrived for the partition this long: rows land soon after their
    /// sender goes quiet (a file per partition at most this often). Default: a quarter of
    /// `roll_interval`.
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub roll_idle: Option<Duration>,
    /// Most Arrow memory the open files of all sources may hold together; past it, each source
    /// commits what it holds, so that memory stays bounded however many sources and partitions
    /// there are.
    pub memory_budget: ByteSize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            batch_records: 4096,
            roll_records: 1_000_000,
            roll_size: ByteSize::mib(64),
            roll_interval: Duration::from_secs(30),
            roll_idle: None,
            memory_budget: ByteSize::mib(16),
        }
    }
}

impl StreamConfig {
    /// How long a partition may go without records before its rows are committed.
    pub fn roll_idle(&self) -> Duration {
        self.roll_idle.unwrap_or(self.roll_interval / 4)
    }

    /// Checks what the types cannot: every threshold above zero.
    pub fn check(&self) -> Result<(), sluice_config::ValueError> {
        sluice_config::check(
            "stream",
            [
                ("batch_records", "at least 1", self.batch_records == 0),
                ("roll_records", "at least 1", self.roll_records == 0),
                ("roll_size", "at least 1 B", self.roll_size.as_u64() == 0),
                ("roll_interval", "at least 1ms", self.roll_interval.is_zero()),
                ("roll_idle", "at least 1ms", self.roll_idle.is_some_and(|idle| idle.is_zero())),
                ("memory_budget", "at least 1 B", self.memory_budget.as_u64() == 0),
            ],
        )
    }
}

/// The running stream core.
pub struct StreamCore {
    stop: watch::Sender<bool>,
    positions: watch::Receiver<Positions>,
    commits: tokio::sync::broadcast::Sender<PartitionDir>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl StreamCore {
    /// Starts a stream for every source in `sources`, and for sources that appear later.
    pub fn start(log: Arc<dyn StreamLog>, warehouse: Warehouse, sources: SourceTable, config: StreamConfig) -> Self {
        Self::start_sharing(log, warehouse, sources, config, TableSchemas::default())
    }

    /// As [`start`](Self::start), recording what it learns of table schemas in `schemas`.
    pub fn start_sharing(
        log: Arc<dyn StreamLog>,
        warehouse: Warehouse,
        sources: SourceTable,
        config: StreamConfig,
        schemas: TableSchemas,
    ) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let (positions_tx, positions) = watch::channel(Positions::new());
        let (commits, _) = tokio::sync::broadcast::channel(1024);
        let cx = worker::Context {
            log,
            warehouse,
            sources,
            config,
            stop: stop_rx,
            positions: positions_tx,
            commits: commits.clone(),
            schemas,
            held: Arc::default(),
        };
        let supervisor = tokio::spawn(supervise(cx));
        Self { stop, positions, commits, supervisor }
    }

    /// The partition directory of every committed file, as commits happen (for the catalog).
    pub fn commits(&self) -> tokio::sync::broadcast::Receiver<PartitionDir> {
        self.commits.subscribe()
    }

    /// Committed positions, updated after every commit.
    pub fn positions(&self) -> watch::Receiver<Positions> {
        self.positions.clone()
    }

    /// Stops consuming, commits what is held, and waits for every stream to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
    }
}

async fn supervise(cx: worker::Context) {
    let mut running = HashSet::new();
    let mut streams = JoinSet::new();
    let mut stop = cx.stop.clone();
    loop {
        for name in cx.sources.names() {
            if running.insert(name.clone()) {
                streams.spawn(run_source(name, cx.clone()));
            }
        }
        // Sources appear when plugins are dropped into the plugin directory.
        if tokio::time::timeout(Duration::from_secs(1), stop.wait_for(|s| *s)).await.is_ok() {
            break;
        }
    }
    while streams.join_next().await.is_some() {}
}

async fn run_source(name: String, cx: worker::Context) {
    let mut attempt = 0;
    loop {
        let mut stream = worker::SourceStream::new(name.clone(), cx.clone());
        match stream.run().await {
            Ok(()) | Err(StreamError::Stopping) => return,
            Err(error) => {
                tracing::error!(source = %name, %error, "stream failed; restarting from the warehouse's positions");
                let mut stop = cx.stop.clone();
                if tokio::time::timeout(backoff(attempt), stop.wait_for(|s| *s)).await.is_ok() {
                    return;
                }
                attempt += 1;
            }
        }
    }
}
