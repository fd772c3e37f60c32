//! One source's stream: consume, transform, hold rows per log partition, commit to the
//! warehouse, then commit the consumer position.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_log::{Committed, LogConsumer, LogError, Ownership, StoredRun, StreamLog, backoff};
use sluice_runtime::SourceTable;
use sluice_warehouse::{Warehouse, WarehouseError};
use tokio::sync::watch;

use crate::segment::OpenSegment;
use crate::transform::{Outcome, transform};
use crate::{Positions, StreamConfig};

/// Why a source's stream stopped (it is restarted from the warehouse's committed positions).
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The warehouse refused data (not a transient outage).
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// The log failed in a way a retry does not fix.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Shutting down.
    #[error("the stream is stopping")]
    Stopping,
}

/// Everything a source's stream needs.
#[derive(Clone)]
pub(crate) struct Context {
    pub log: Arc<dyn StreamLog>,
    pub warehouse: Warehouse,
    pub sources: SourceTable,
    pub config: StreamConfig,
    pub stop: watch::Receiver<bool>,
    pub positions: watch::Sender<Positions>,
    pub commits: tokio::sync::broadcast::Sender<sluice_warehouse::PartitionDir>,
    /// Per table, the schema its files have (`None`: no file yet); shared by all sources.
    pub schemas: crate::known::TableSchemas,
    /// Arrow memory held by the open segments of every source (see `StreamConfig::memory_budget`).
    pub held: Arc<std::sync::atomic::AtomicUsize>,
}

impl Context {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `delay`, or less when asked to stop; says whether to go on.
    async fn pause(&self, delay: Duration) -> bool {
        let mut stop = self.stop.clone();
        let _ = tokio::time::timeout(delay, stop.wait_for(|s| *s)).await;
        !self.stopping()
    }
}

/// Runs `$op` (an expression yielding a future of a `Result`) until it succeeds, backing off
/// while it fails with an error `$transient` accepts; other errors end the stream.
macro_rules! retry {
    ($cx:expr, $what:expr, $op:expr, $transient:expr) => {{
        let mut attempt = 0;
        loop {
            match $op.await {
                Ok(value) => break Ok::<_, StreamError>(value),
                Err(error) if $transient(&error) => {
                    tracing::warn!(%error, attempt, "{} failed; retrying", $what);
                    if !$cx.pause(backoff(attempt)).await {
                        break Err(StreamError::Stopping);
                    }
                    attempt += 1;
                }
                Err(error) => break Err(StreamError::from(error)),
            }
        }
    }};
}

fn log_transient(error: &LogError) -> bool {
    matches!(error, LogError::Unavailable(_))
}

/// Segments whose files are uploaded (hidden), each with its upload.
type Written = Vec<(u32, OpenSegment, sluice_warehouse::Upload)>;

/// The stream of one source.
pub(crate) struct SourceStream {
    name: String,
    cx: Context,
    /// This run's writer token, in every file name it writes
    /// ([`sluice_warehouse::DataFile::token`]).
    token: String,
    /// The log partitions this stream owns and has recovered.
    owned: BTreeSet<u32>,
    segments: BTreeMap<u32, OpenSegment>,
    /// The warehouse commit in progress, if any: its files are encoded and uploaded while the
    /// next records are read and transformed. At most one per source, so commits stay in order.
    writing: Option<tokio::task::JoinHandle<Result<Written, StreamError>>>,
}

impl SourceStream {
    pub fn new(name: String, cx: Context) -> Self {
        Self {
            name,
            cx,
            token: sluice_log::unique_token(),
            owned: BTreeSet::new(),
            segments: BTreeMap::new(),
            writing: None,
        }
    }

    /// Recovers positions, then streams until asked to stop (committing what it holds) or until
    /// an error that needs a restart.
    pub async fn run(&mut self) -> Result<(), StreamError> {
        let result = self.stream().await;
        if let Some(task) = self.writing.take() {
            // Failing: the commit in progress must stop before the next run's recovery looks at
            // the warehouse (an aborted commit is left like a crashed one, which recovery undoes).
            task.abort();
            let _ = task.await;
        }
        result
    }

    async fn stream(&mut self) -> Result<(), StreamError> {
        let cx = self.cx.clone();
        let name = self.name.clone();
        let mut consumer = retry!(cx, "opening the log", cx.log.consumer(&name), log_transient)?;
        tracing::info!(source = %name, partitions = consumer.partitions(), "stream started");

        let mut failures = 0;
        // Never read more than a file may hold, so that files roll at `roll_records`.
        let read_max = cx.config.batch_records.min(cx.config.roll_records).max(1);
        // Changes arrive during polls; the spool's (every partition) before the first one.
        self.follow_ownership(&mut *consumer).await?;
        loop {
            if cx.stopping() {
                return self.flush_all(&mut *consumer).await;
            }
            if self.writing.as_ref().is_some_and(tokio::task::JoinHandle::is_finished) {
                self.finish_writing(&mut *consumer).await?;
            }
            let mut wait =
                self.next_deadline().map_or(cx.config.roll_interval, |d| d.saturating_duration_since(Instant::now()));
            if self.writing.is_some() {
                // Come back soon to store the positions of the commit in progress, and not
                // sooner: segments due meanwhile wait for it (`flush_due`). (A poll is never
                // cancelled for it: records it read would be lost.)
                wait = Duration::from_millis(5);
            }
            let mut stop = cx.stop.clone();
            let polled = tokio::select! {
                polled = consumer.poll(read_max, wait.max(Duration::from_millis(1))) => polled,
                _ = stop.wait_for(|s| *s) => continue,
            };
            // Partitions revoked during the poll are dropped before its records are handled.
            self.follow_ownership(&mut *consumer).await?;
            match polled {
                Ok(runs) => {
                    failures = 0;
                    self.handle(&mut *consumer, runs).await?;
                }
                Err(error) if log_transient(&error) => {
                    tracing::warn!(source = %name, %error, "reading the log failed; retrying");
                    if !cx.pause(backoff(failures)).await {
                        continue;
                    }
                    failures += 1;
                }
                Err(error) => return Err(error.into()),
            }
            self.flush_due(&mut *consumer).await?;
        }
    }

    /// Applies the consumer's ownership changes: a revoked partition's open rows are dropped
    /// (its new owner reads them again from the stored position); an assigned partition is
    /// recovered — the commit the log decided last is finished, other hidden files removed —
    /// and read from where the log and the warehouse say.
    async fn follow_ownership(&mut self, consumer: &mut dyn LogConsumer) -> Result<(), StreamError> {
        let changes = consumer.ownership_changes();
        if changes.is_empty() {
            return Ok(());
        }
        let mut assigned = BTreeSet::new();
        for change in changes {
            match change {
                Ownership::Revoked(partitions) => {
                    for partition in partitions {
                        assigned.remove(&partition);
                        self.owned.remove(&partition);
                        if let Some(segment) = self.segments.remove(&partition) {
                            self.cx.held.fetch_sub(segment.bytes, std::sync::atomic::Ordering::Relaxed);
                        }
                        self.cx.positions.send_modify(|p| {
                            p.remove(&(self.name.clone(), partition));
                        });
                    }
                }
                Ownership::Assigned(partitions) => assigned.extend(partitions),
            }
        }
        if assigned.is_empty() {
            return Ok(());
        }
        // The commit in progress is settled first: recovery must not remove the hidden files
        // of a commit this stream is about to decide. (A partition being assigned is not owned
        // yet, so its part of that commit is discarded, not decided.)
        self.finish_writing(consumer).await?;
        let partitions: Vec<u32> = assigned.into_iter().collect();
        let cx = self.cx.clone();
        let committed =
            retry!(cx, "reading consumer positions", consumer.committed(partitions.clone()), log_transient)?;
        let decided: BTreeMap<u32, String> =
            committed.iter().filter_map(|c| c.commit.clone().map(|id| (c.partition, id))).collect();
        let recovered = retry!(
            cx,
            "warehouse recovery",
            cx.warehouse.recover_partitions(&self.name, Some(&partitions), &decided),
            WarehouseError::is_transient
        )?;
        if recovered.rolled_forward + recovered.removed > 0 {
            tracing::info!(source = %self.name, rolled_forward = recovered.rolled_forward, removed = recovered.removed, "finished interrupted commits");
        }
        let stored: BTreeMap<u32, u64> = committed.iter().map(|c| (c.partition, c.next)).collect();
        for partition in partitions {
            let from_warehouse = recovered.next.get(&partition).copied().unwrap_or(0);
            let start = from_warehouse.max(stored.get(&partition).copied().unwrap_or(0));
            retry!(cx, "seeking the log", consumer.seek(partition, start), log_transient)?;
            self.owned.insert(partition);
            self.publish(partition, start);
        }
        tracing::info!(source = %self.name, owned = ?self.owned, "partitions assigned");
        Ok(())
    }

    fn publish(&self, partition: u32, next: u64) {
        self.cx.positions.send_modify(|p| {
            p.insert((self.name.clone(), partition), next);
        });
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.segments.values().map(|s| s.deadline(&self.cx.config)).min()
    }

    async fn handle(&mut self, consumer: &mut dyn LogConsumer, runs: Vec<StoredRun>) -> Result<(), StreamError> {
        let mut by_partition: BTreeMap<u32, Vec<StoredRun>> = BTreeMap::new();
        for run in runs.into_iter().filter(|run| !run.is_empty() && self.owned.contains(&run.partition)) {
            by_partition.entry(run.partition).or_default().push(run);
        }
        for (partition, runs) in by_partition {
            let runs: Arc<[StoredRun]> = runs.into();
            let mut outcome = self.transform(&runs).await?;
            self.gate_schemas(&runs, &mut outcome).await?;
            let first = runs[0].first;
            let last = runs[runs.len() - 1].end() - 1;
            if !outcome.dead.is_empty() {
                let dead = outcome.dead.len();
                let letters = outcome.dead.clone();
                let (cx, name) = (self.cx.clone(), self.name.clone());
                retry!(cx, "writing dead letters", cx.log.dead_letter(&name, letters.clone()), log_transient)?;
                metrics::counter!("sluice_records_dead_lettered_total", "source" => self.name.clone())
                    .increment(dead as u64);
            }
            if self.segments.get(&partition).is_some_and(|s| !s.accepts(&outcome.tables)) {
                // A new plugin version changed a table's schema: close the old file set first.
                self.flush(consumer, vec![partition]).await?;
            }
            let segment = self.segments.entry(partition).or_insert_with(|| OpenSegment::new(first));
            let before = segment.bytes;
            segment.push(last, outcome.tables);
            self.cx.held.fetch_add(segment.bytes - before, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Refuses rows whose table schema existing files cannot follow (see `check_evolution`):
    /// the chunk's records go to the dead-letter queue instead, and nothing is written under
    /// the old table.
    async fn gate_schemas(&self, runs: &[StoredRun], outcome: &mut Outcome) -> Result<(), StreamError> {
        let cx = &self.cx;
        let mut refused = None;
        for (table, batch) in &outcome.tables {
            // Compared as files hold them (provenance strings plain, not dictionary-encoded).
            let schema = sluice_warehouse::file_schema(&batch.schema());
            let mut schemas = cx.schemas.lock().await;
            let read = || async {
                retry!(cx, "reading a table's schema", cx.warehouse.written_schema(table), WarehouseError::is_transient)
            };
            if let Err(reason) = crate::known::admit_rows(&mut schemas, table, schema, read).await? {
                refused = Some(format!("table `{table}`: incompatible schema change: {reason}; nothing was written"));
                break;
            }
        }
        if let Some(reason) = refused {
            tracing::error!(source = %self.name, %reason, "rows refused");
            let plugin = outcome
                .dead
                .first()
                .map(|d| d.plugin.clone())
                .or_else(|| self.cx.sources.get(&self.name).and_then(|s| s.plugin().ok()).map(|p| p.id()));
            let dead: std::collections::HashSet<sluice_log::Position> =
                outcome.dead.iter().map(|d| d.record.position).collect();
            let records = runs.iter().flat_map(|run| (0..run.len()).map(move |index| (run, index)));
            for (run, index) in records.filter(|(run, index)| !dead.contains(&run.position(*index))) {
                outcome.dead.push(sluice_log::DeadLetter::now(
                    run.record(index),
                    reason.clone(),
                    None,
                    plugin.clone().unwrap_or_default(),
                ));
            }
            outcome.tables.clear();
        }
        Ok(())
    }

    async fn transform(&self, runs: &Arc<[StoredRun]>) -> Result<Outcome, StreamError> {
        let mut attempt = 0;
        loop {
            if let Some(source) = self.cx.sources.get(&self.name) {
                let runs = runs.clone();
                let result = tokio::task::spawn_blocking(move || transform(&source, &runs))
                    .await
                    .expect("the transform task does not panic");
                match result {
                    Ok(outcome) => return Ok(outcome),
                    Err(error) => tracing::warn!(source = %self.name, %error, "plugin unloaded; waiting for it"),
                }
            }
            // The source's plugin is gone: hold the stream (nothing is lost) until it is back.
            if !self.cx.pause(backoff(attempt)).await {
                return Err(StreamError::Stopping);
            }
            attempt += 1;
        }
    }

    async fn flush_due(&mut self, consumer: &mut dyn LogConsumer) -> Result<(), StreamError> {
        let config = &self.cx.config;
        let now = Instant::now();
        let over_budget =
            self.cx.held.load(std::sync::atomic::Ordering::Relaxed) > config.memory_budget.as_u64() as usize;
        let full = |s: &OpenSegment| s.rows >= config.roll_records || s.bytes as u64 >= config.roll_size.as_u64();
        let due: Vec<u32> = self
            .segments
            .iter()
            .filter(|(_, s)| over_budget || full(s) || s.deadline(config) <= now)
            .map(|(p, _)| *p)
            .collect();
        // A segment due by age alone waits while the previous commit uploads (on HDFS a file's
        // close alone takes ~0.5 s) instead of stopping this loop until it is done; it goes
        // with the next commit, together with any other that comes due meanwhile. Size and
        // memory limits do not wait.
        let uploading = self.writing.as_ref().is_some_and(|w| !w.is_finished());
        if uploading && !over_budget && !due.iter().any(|p| self.segments.get(p).is_some_and(full)) {
            return Ok(());
        }
        self.flush(consumer, due).await
    }

    async fn flush_all(&mut self, consumer: &mut dyn LogConsumer) -> Result<(), StreamError> {
        self.flush(consumer, self.segments.keys().copied().collect()).await?;
        self.finish_writing(consumer).await
    }

    /// Starts committing the rows of `partitions` to the warehouse — uploading their files,
    /// hidden, the partitions concurrently, in the background — once the commit before it is
    /// finished. The commit is decided and published when the upload is done
    /// (`finish_writing`).
    async fn flush(&mut self, consumer: &mut dyn LogConsumer, partitions: Vec<u32>) -> Result<(), StreamError> {
        let segments: Vec<(u32, OpenSegment)> =
            partitions.into_iter().filter_map(|p| self.segments.remove(&p).map(|s| (p, s))).collect();
        if segments.is_empty() {
            return Ok(());
        }
        self.finish_writing(consumer).await?;
        // Taken out of the open set: whatever happens to the commit, this memory is no longer
        // held for new rows (a failed commit ends the worker, which re-reads from the log).
        let taken: usize = segments.iter().map(|(_, s)| s.bytes).sum();
        self.cx.held.fetch_sub(taken, std::sync::atomic::Ordering::Relaxed);
        let (cx, name, token) = (self.cx.clone(), self.name.clone(), self.token.clone());
        self.writing = Some(tokio::spawn(async move {
            let started = Instant::now();
            let commits: Vec<_> = segments.iter().map(|(p, s)| s.to_commit(&name, *p, &token)).collect();
            let results = futures::future::join_all(commits.iter().map(|commit| {
                let cx = &cx;
                async move {
                    retry!(cx, "uploading to the warehouse", cx.warehouse.upload(commit), WarehouseError::is_transient)
                }
            }))
            .await;
            let mut written = Vec::with_capacity(segments.len());
            for ((partition, segment), upload) in segments.into_iter().zip(results) {
                let upload = upload?;
                tracing::debug!(source = %name, partition, first = segment.first, last = segment.last, rows = segment.rows, files = upload.files.len(), elapsed = ?started.elapsed(), "uploaded");
                written.push((partition, segment, upload));
            }
            Ok(written)
        }));
        Ok(())
    }

    /// Waits for the commit in progress, if any, then decides it — stores the consumer
    /// positions with the commit's identity, in one write the log fences — publishes its files
    /// and announces them. The part of a partition this stream no longer owns is discarded.
    async fn finish_writing(&mut self, consumer: &mut dyn LogConsumer) -> Result<(), StreamError> {
        let Some(task) = self.writing.take() else { return Ok(()) };
        let written = task.await.expect("the commit task does not panic")?;
        let cx = self.cx.clone();
        let (written, lost): (Written, Written) = written.into_iter().partition(|(p, _, _)| self.owned.contains(p));
        for (partition, _, upload) in &lost {
            tracing::info!(source = %self.name, partition, "partition revoked before its commit was decided; discarding it");
            retry!(cx, "discarding an upload", cx.warehouse.discard(upload), WarehouseError::is_transient)?;
        }
        if written.is_empty() {
            return Ok(());
        }
        let positions: Vec<Committed> = written
            .iter()
            .map(|(partition, segment, upload)| Committed {
                partition: *partition,
                next: segment.last + 1,
                commit: Some(upload.commit_id.clone()),
            })
            .collect();
        // Fenced (another instance owns a partition now) or worse: the error restarts the
        // stream. The uploads stay: a timed-out attempt may have been stored after all, so
        // only the partition's next recovery, which reads the decision, may remove them.
        retry!(cx, "committing the consumer position", consumer.commit(positions.clone()), log_transient)?;
        for (partition, segment, upload) in written {
            let files =
                retry!(cx, "publishing committed files", cx.warehouse.publish(&upload), WarehouseError::is_transient)?;
            let next = segment.last + 1;
            metrics::counter!("sluice_rows_committed_total", "source" => self.name.clone())
                .increment(segment.rows as u64);
            metrics::counter!("sluice_files_committed_total", "source" => self.name.clone())
                .increment(files.len() as u64);
            self.publish(partition, next);
            {
                // Merged, not replaced: a column an older version had (and a later one
                // dropped) must not come back retyped.
                let mut schemas = cx.schemas.lock().await;
                for (table, schema) in segment.schemas() {
                    let file = sluice_warehouse::file_schema(&schema);
                    let known = match schemas.get(&table) {
                        Some(Some(old)) => Arc::new(crate::schema::merged(old, &file)),
                        _ => file,
                    };
                    schemas.insert(table, Some(known));
                }
            }
            for path in &files {
                if let Some(directory) = cx.warehouse.partition_of(path) {
                    // Nobody listening (no catalog configured) is fine.
                    let _ = cx.commits.send(directory);
                }
            }
        }
        Ok(())
    }
}
