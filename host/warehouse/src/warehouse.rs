//! Committing segments of the log as data files, and recovering after a crash.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::encode::{Compression, EncodeOptions, file_schema};
use crate::error::WarehouseError;
use crate::layout::PartitionSpec;
use crate::naming::DataFile;
use crate::schemas::{self, merged_schema};
use crate::storage::Storage;

/// Files of one commit uploaded at once.
const UPLOADS_AT_ONCE: usize = 8;

/// Footers read at once when a table's schema is read from its files.
const FOOTERS_AT_ONCE: usize = 16;

/// `[warehouse]`: where tables live, how they are laid out and encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseConfig {
    /// `hdfs://namenode:port/dir` or `file:///dir`; empty: the binary's default
    /// (`DATA_DIR/warehouse`).
    pub url: String,
    /// `zstd` or `snappy`.
    pub compression: Compression,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// A local warehouse's files are created group-readable (0640, directories 0750) for
    /// Trino's readers, instead of private (0600/0700). The data directory stays 0700.
    pub group_readable: bool,
    /// `[warehouse.tables.NAME]`: per-table layout; tables not listed are partitioned by
    /// ingest date.
    pub tables: BTreeMap<String, TableLayout>,
}

impl Default for WarehouseConfig {
    fn default() -> Self {
        let encode = EncodeOptions::default();
        Self {
            url: String::new(),
            compression: encode.compression,
            row_group_rows: encode.row_group_rows,
            group_readable: false,
            tables: BTreeMap::new(),
        }
    }
}

/// `[warehouse.tables.NAME]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableLayout {
    /// A date or timestamp column: partition by its date (`event_date=...`) instead of the
    /// ingest date.
    pub partition_by: String,
}

impl WarehouseConfig {
    /// Checks what the types cannot: row groups of at least one row.
    pub fn check(&self) -> Result<(), sluice_config::ValueError> {
        sluice_config::check("warehouse", [("row_group_rows", "at least 1", self.row_group_rows == 0)])
    }

    /// How data files are encoded.
    pub fn encode_options(&self) -> EncodeOptions {
        EncodeOptions { compression: self.compression, row_group_rows: self.row_group_rows }
    }

    /// The partitioning of `table`: by `event_date` of its `partition_by` column, or by the
    /// ingest date ([`PartitionSpec::default`]).
    pub fn partitioning(&self, table: &str) -> PartitionSpec {
        match self.tables.get(table) {
            Some(layout) => PartitionSpec { key: "event_date".into(), column: layout.partition_by.clone() },
            None => PartitionSpec::default(),
        }
    }
}

/// The rows of one range of one log partition, for every table they map to.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Source name.
    pub source: String,
    /// Log partition.
    pub partition: u32,
    /// First log offset covered.
    pub first: u64,
    /// Last log offset covered (inclusive).
    pub last: u64,
    /// Rows per table; the batches of one table share a schema.
    pub tables: Vec<(String, Vec<RecordBatch>)>,
    /// The writer's token, in every file name of the commit ([`DataFile::token`]).
    pub token: String,
}

impl Segment {
    /// The identity of this segment's commit ([`DataFile::commit_id`]).
    pub fn commit_id(&self) -> String {
        self.file(1, 1).commit_id()
    }

    fn file(&self, index: u32, count: u32) -> DataFile {
        DataFile {
            source: self.source.clone(),
            partition: self.partition,
            first: self.first,
            last: self.last,
            index,
            count,
            token: self.token.clone(),
        }
    }
}

/// A commit's files, uploaded under their hidden names and not visible yet: the caller decides
/// the commit (stores it with the consumer position), then [`Warehouse::publish`]es it, or
/// [`Warehouse::discard`]s it when the decision failed.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Log partition.
    pub partition: u32,
    /// The commit's identity ([`DataFile::commit_id`]).
    pub commit_id: String,
    /// Each file's hidden and committed path.
    pub files: Vec<(Path, Path)>,
}

impl Upload {
    /// The paths the files have once published.
    pub fn committed_paths(&self) -> Vec<Path> {
        self.files.iter().map(|(_, committed)| committed.clone()).collect()
    }
}

/// A partition directory of a table, as `<key>=<value>` below the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionDir {
    /// Table.
    pub table: String,
    /// Directory name, `<key>=<value>`.
    pub directory: String,
}

/// What [`Warehouse::recover`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Per log partition, the first offset not yet committed.
    pub next: BTreeMap<u32, u64>,
    /// Hidden files of decided commits that were renamed into place.
    pub rolled_forward: usize,
    /// Hidden files of undecided commits, and write debris, that were removed.
    pub removed: usize,
}

/// Parquet tables in a Hive layout on one [`Storage`].
#[derive(Debug, Clone)]
pub struct Warehouse {
    storage: Storage,
    config: WarehouseConfig,
    /// Schema records this process wrote or found, and the tables whose records it has read.
    recorded: Arc<Mutex<Recorded>>,
}

#[derive(Debug, Default)]
struct Recorded {
    tables: HashSet<String>,
    records: HashSet<Path>,
}

struct PendingFile {
    hidden: Path,
    committed: Path,
    bytes: bytes::Bytes,
}

impl Warehouse {
    /// A warehouse on `storage`.
    pub fn new(storage: Storage, config: WarehouseConfig) -> Self {
        Self { storage, config, recorded: Arc::default() }
    }

    /// Opens the warehouse at `url` (see [`Storage::open`]).
    pub fn open(url: &str, config: WarehouseConfig) -> Result<Self, WarehouseError> {
        Ok(Self::new(Storage::open(url)?, config))
    }

    /// The storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The partitioning of `table`.
    pub fn partitioning(&self, table: &str) -> PartitionSpec {
        self.config.partitioning(table)
    }

    /// The partition directory a committed file is in.
    pub fn partition_of(&self, path: &Path) -> Option<PartitionDir> {
        let parts: Vec<String> = path.prefix_match(&self.storage.root)?.map(|p| p.as_ref().to_string()).collect();
        match parts.as_slice() {
            [table, directory, _file] => Some(PartitionDir { table: table.clone(), directory: directory.clone() }),
            _ => None,
        }
    }

    /// Writes `segment` as one commit: uploads it, then publishes it. For a single writer
    /// (tests, tools); the stream decides each commit between the two steps.
    pub async fn commit(&self, segment: &Segment) -> Result<Vec<Path>, WarehouseError> {
        let upload = self.upload(segment).await?;
        self.publish(&upload).await
    }

    /// Encodes `segment` and uploads its files under their hidden names, which readers skip.
    /// Retrying a failed upload of the same segment is safe.
    pub async fn upload(&self, segment: &Segment) -> Result<Upload, WarehouseError> {
        // Splitting by partition and encoding is CPU work: off the async threads.
        let (warehouse, owned) = (self.clone(), segment.clone());
        let pending = tokio::task::spawn_blocking(move || warehouse.encode_segment(&owned)).await.map_err(|e| {
            WarehouseError::InvalidRows { table: String::new(), reason: format!("encoding failed: {e}") }
        })??;
        // A few files at a time: closing a file on HDFS waits ~0.5 s for the NameNode (see
        // docs/performance.md), so a segment of several tables or dates uploads them together.
        let puts: Vec<_> = pending
            .iter()
            .map(|file| {
                let (store, path, bytes) = (self.storage.store.clone(), file.hidden.clone(), file.bytes.clone());
                async move { store.put(&path, PutPayload::from_bytes(bytes)).await }
            })
            .collect();
        futures::stream::iter(puts).buffer_unordered(UPLOADS_AT_ONCE).try_collect::<Vec<_>>().await?;
        self.record_schemas(segment).await?;
        Ok(Upload {
            partition: segment.partition,
            commit_id: segment.commit_id(),
            files: pending.into_iter().map(|f| (f.hidden, f.committed)).collect(),
        })
    }

    /// Renames a decided commit's files into place, where readers see them. A file that is
    /// already in place (another instance's recovery finished this commit) counts as done.
    pub async fn publish(&self, upload: &Upload) -> Result<Vec<Path>, WarehouseError> {
        for (hidden, committed) in &upload.files {
            match self.storage.store.rename(hidden, committed).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) => match self.storage.store.head(committed).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => {
                        return Err(WarehouseError::Vanished(hidden.to_string()));
                    }
                    Err(e) => return Err(e.into()),
                },
                Err(e) => return Err(e.into()),
            }
        }
        Ok(upload.committed_paths())
    }

    /// Removes the hidden files of a commit that was not decided.
    pub async fn discard(&self, upload: &Upload) -> Result<(), WarehouseError> {
        for (hidden, _) in &upload.files {
            self.remove(hidden).await?;
        }
        Ok(())
    }

    /// The files of one commit, encoded, with their hidden and committed paths.
    fn encode_segment(&self, segment: &Segment) -> Result<Vec<PendingFile>, WarehouseError> {
        // Each batch is split by Hive partition on its own and the pieces of one directory are
        // written into one file as they are: no copy of the whole segment is made first.
        let mut parts = Vec::new();
        for (table, batches) in &segment.tables {
            let spec = self.partitioning(table);
            let mut directories: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
            for batch in batches.iter().filter(|b| b.num_rows() > 0) {
                for (value, rows) in spec.split(table, batch)? {
                    directories.entry(spec.directory(&value)).or_default().push(rows);
                }
            }
            for (directory, rows) in directories {
                parts.push((table.as_str(), directory, rows));
            }
        }
        let count = parts.len() as u32;
        let mut pending = Vec::with_capacity(parts.len());
        for (i, (table, directory, rows)) in parts.into_iter().enumerate() {
            let file = segment.file(i as u32 + 1, count);
            let bytes = self.config.encode_options().encode(rows[0].schema(), &rows)?;
            pending.push(PendingFile {
                hidden: self.storage.path(&[table, &directory, &file.hidden_name()]),
                committed: self.storage.path(&[table, &directory, &file.file_name()]),
                bytes,
            });
        }
        Ok(pending)
    }

    /// Finds the committed position of every log partition of `source` from the file names,
    /// finishes decided commits and removes the leftovers of undecided ones (for a single
    /// writer: every partition, commits decided by their renamed files alone).
    pub async fn recover(&self, source: &str) -> Result<Recovered, WarehouseError> {
        self.recover_partitions(source, None, &BTreeMap::new()).await
    }

    /// Recovery of `partitions` of `source` (`None`: all), which the caller owns now, with the
    /// commit the log decided last for each (`decided`: partition → commit id). A hidden file
    /// is renamed into place when its commit is decided — it is the partition's decided
    /// commit, or a file of the same commit (range and token) is already in place — and
    /// removed otherwise: it belongs to a commit that failed, or to a fenced former owner. The
    /// hidden files and write debris of partitions not recovered are left alone (their owners
    /// may be writing them).
    pub async fn recover_partitions(
        &self,
        source: &str,
        partitions: Option<&[u32]>,
        decided: &BTreeMap<u32, String>,
    ) -> Result<Recovered, WarehouseError> {
        let mine = |partition: u32| partitions.is_none_or(|p| p.contains(&partition));
        let objects: Vec<Path> =
            self.storage.store.list(Some(&self.storage.root)).map_ok(|meta| meta.location).try_collect().await?;
        let mut committed: BTreeSet<(u32, String)> = BTreeSet::new();
        let mut next: BTreeMap<u32, u64> = BTreeMap::new();
        let mut hidden: Vec<(DataFile, Path)> = Vec::new();
        let mut recovered = Recovered::default();
        for path in objects {
            let Some(name) = path.filename() else { continue };
            match DataFile::parse(name) {
                Some((file, _)) if file.source != source || !mine(file.partition) => {}
                Some((file, false)) => {
                    let at = next.entry(file.partition).or_insert(0);
                    *at = (*at).max(file.last + 1);
                    committed.insert((file.partition, file.commit_id()));
                }
                Some((file, true)) => hidden.push((file, path)),
                None => {
                    if DataFile::debris_of(name, source).is_some_and(mine) {
                        self.remove(&path).await?;
                        recovered.removed += 1;
                    }
                }
            }
        }
        for (file, path) in hidden {
            let id = file.commit_id();
            let is_decided = decided.get(&file.partition) == Some(&id) || committed.contains(&(file.partition, id));
            if is_decided {
                let target = sibling(&path, &file.file_name());
                match self.storage.store.rename(&path, &target).await {
                    // Someone else finished it meanwhile.
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                let at = next.entry(file.partition).or_insert(0);
                *at = (*at).max(file.last + 1);
                recovered.rolled_forward += 1;
            } else {
                self.remove(&path).await?;
                recovered.removed += 1;
            }
        }
        recovered.next = next;
        Ok(recovered)
    }

    async fn remove(&self, path: &Path) -> Result<(), WarehouseError> {
        match self.storage.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The committed data files of `table`, sorted by path.
    pub async fn files(&self, table: &str) -> Result<Vec<Path>, WarehouseError> {
        let prefix = self.storage.path(&[table]);
        let mut files: Vec<Path> = self
            .storage
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_filter(|path| {
                let name = path.filename().unwrap_or_default();
                std::future::ready(matches!(DataFile::parse(name), Some((_, false))))
            })
            .try_collect()
            .await?;
        files.sort();
        Ok(files)
    }

    /// Makes sure `table`'s directory exists (catalogs refuse a table over a missing directory):
    /// writes the hidden marker `<table>/_sluice_table`, which readers skip.
    pub async fn ensure_table_dir(&self, table: &str) -> Result<(), WarehouseError> {
        let marker = self.storage.path(&[table, "_sluice_table"]);
        match self.storage.store.head(&marker).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                let text = "A sluice warehouse table: Parquet files in Hive partition directories.\n";
                self.storage.store.put(&marker, PutPayload::from_static(text.as_bytes())).await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the footer of a data file.
    async fn footer(&self, path: &Path) -> Result<parquet::file::metadata::ParquetMetaData, WarehouseError> {
        let meta = self.storage.store.head(path).await?;
        let tail = 8.min(meta.size);
        let footer = self.storage.store.get_range(path, meta.size - tail..meta.size).await?;
        let metadata_len = parquet::file::metadata::FooterTail::try_new(
            footer.as_ref().try_into().map_err(|_| parquet::errors::ParquetError::EOF("short file".into()))?,
        )?
        .metadata_length() as u64;
        let start = meta.size.saturating_sub(tail + metadata_len);
        let bytes = self.storage.store.get_range(path, start..meta.size - tail).await?;
        Ok(parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&bytes)?)
    }

    /// Number of committed rows of `table`, from the Parquet footers.
    pub async fn row_count(&self, table: &str) -> Result<u64, WarehouseError> {
        let mut rows = 0;
        for path in self.files(table).await? {
            rows += self.footer(&path).await?.file_metadata().num_rows() as u64;
        }
        Ok(rows)
    }

    /// The schema `table`'s files were written with: every column they have had, merged in the
    /// order they were written ([`merged_schema`]), or `None` when nothing was written to the
    /// table yet. Read from the table's schema records (see `schemas`; a record is written before
    /// the files it describes are published, so a commit that failed may have left one); a table
    /// written before records existed is read from its data files' footers. Reads only.
    pub async fn written_schema(&self, table: &str) -> Result<Option<arrow::datatypes::SchemaRef>, WarehouseError> {
        Ok(self.read_table_schema(table).await?.0.map(Arc::new))
    }

    /// `table`'s merged schema and whether it came from data files' footers (no record yet).
    async fn read_table_schema(&self, table: &str) -> Result<(Option<arrow::datatypes::Schema>, bool), WarehouseError> {
        let dir = self.storage.path(&[table]);
        let objects = match self.storage.store.list_with_delimiter(Some(&dir)).await {
            Ok(listing) => listing.objects,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut sources: Vec<(chrono::DateTime<chrono::Utc>, Path)> = objects
            .into_iter()
            .filter(|meta| meta.location.filename().is_some_and(schemas::is_record))
            .map(|meta| (meta.last_modified, meta.location))
            .collect();
        let from_footers = sources.is_empty();
        if from_footers {
            let mut listing = self.storage.store.list(Some(&dir));
            while let Some(meta) = listing.try_next().await? {
                if matches!(meta.location.filename().and_then(DataFile::parse), Some((_, false))) {
                    sources.push((meta.last_modified, meta.location));
                }
            }
        } else {
            let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            recorded.records.extend(sources.iter().map(|(_, path)| path.clone()));
        }
        sources.sort();
        // Collected first: a lazy map over the paths would make callers' futures not `Send`.
        let reads: Vec<_> = sources.iter().map(|(_, path)| self.footer_schema(path)).collect();
        let schemas: Vec<arrow::datatypes::Schema> =
            futures::stream::iter(reads).buffered(FOOTERS_AT_ONCE).try_collect().await?;
        let merged = schemas.into_iter().reduce(|old, new| merged_schema(&old, &new));
        if merged.is_none() || !from_footers {
            self.recorded.lock().unwrap_or_else(|e| e.into_inner()).tables.insert(table.to_string());
        }
        Ok((merged, from_footers))
    }

    /// Records the schemas of `segment`'s tables before its files can be published. The first
    /// time a table is met, one written before records existed is recorded from its footers
    /// (only a writer records: admin commands reading a warehouse leave it as it is).
    async fn record_schemas(&self, segment: &Segment) -> Result<(), WarehouseError> {
        for (table, batches) in &segment.tables {
            let Some(batch) = batches.first() else { continue };
            let checked = self.recorded.lock().unwrap_or_else(|e| e.into_inner()).tables.contains(table);
            if !checked && let (Some(schema), true) = self.read_table_schema(table).await? {
                self.record(table, &schema).await?;
                self.recorded.lock().unwrap_or_else(|e| e.into_inner()).tables.insert(table.clone());
            }
            self.record(table, &file_schema(&batch.schema())).await?;
        }
        Ok(())
    }

    /// Writes `schema`'s record for `table` unless it exists.
    async fn record(&self, table: &str, schema: &arrow::datatypes::Schema) -> Result<(), WarehouseError> {
        let path = self.storage.path(&[table, &schemas::record_name(schema)]);
        if self.recorded.lock().unwrap_or_else(|e| e.into_inner()).records.contains(&path) {
            return Ok(());
        }
        match self.storage.store.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => {
                let bytes = self.config.encode_options().encode(Arc::new(schema.clone()), &[])?;
                self.storage.store.put(&path, PutPayload::from_bytes(bytes)).await?;
            }
            Err(e) => return Err(e.into()),
        }
        self.recorded.lock().unwrap_or_else(|e| e.into_inner()).records.insert(path);
        Ok(())
    }

    /// The Arrow schema in a Parquet file's footer.
    async fn footer_schema(&self, path: &Path) -> Result<arrow::datatypes::Schema, WarehouseError> {
        let metadata = self.footer(path).await?;
        let file = metadata.file_metadata();
        Ok(parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())?)
    }

    /// Reads every committed row of `table` (for tests and tools; loads each file whole).
    pub async fn read_table(&self, table: &str) -> Result<Vec<(Path, RecordBatch)>, WarehouseError> {
        let mut out = Vec::new();
        for path in self.files(table).await? {
            let bytes = self.storage.store.get(&path).await?.bytes().await?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
            for batch in reader {
                out.push((path.clone(), batch.map_err(parquet::errors::ParquetError::from)?));
            }
        }
        Ok(out)
    }
}

fn sibling(path: &Path, name: &str) -> Path {
    let mut parts: Vec<_> = path.parts().collect();
    parts.pop();
    let parent: Path = parts.into_iter().collect();
    parent.join(name)
}
