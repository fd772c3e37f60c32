//! Commits and crash recovery on a local warehouse (`file://`).

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use sluice_warehouse::{DataFile, Segment, Warehouse, WarehouseConfig};

const DAY_US: i64 = 86_400_000_000;
const NOV_27_US: i64 = 1_795_737_600_000_000;

fn rows(offsets: &[i64], received_at: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("ingest_received_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("ingest_offset", DataType::Int64, false),
    ]));
    let names: Vec<String> = offsets.iter().map(|o| format!("row {o}")).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(TimestampMicrosecondArray::from(received_at.to_vec()).with_timezone("UTC")),
            Arc::new(Int64Array::from(offsets.to_vec())),
        ],
    )
    .unwrap()
}

fn open(dir: &std::path::Path) -> Warehouse {
    let url = format!("file://{}", dir.display());
    Warehouse::open(&url, WarehouseConfig::default()).unwrap()
}

async fn offsets(warehouse: &Warehouse, table: &str) -> Vec<i64> {
    let mut all: Vec<i64> = warehouse
        .read_table(table)
        .await
        .unwrap()
        .iter()
        .flat_map(|(_, b)| b.column_by_name("ingest_offset").unwrap().as_primitive::<Int64Type>().values().to_vec())
        .collect();
    all.sort_unstable();
    all
}

#[tokio::test]
async fn a_commit_writes_hive_directories_and_recovery_reads_positions_from_names() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = open(dir.path());
    let segment = Segment {
        source: "st-mary".into(),
        partition: 2,
        first: 10,
        last: 13,
        tables: vec![
            ("patients".into(), vec![rows(&[10, 11], &[NOV_27_US, NOV_27_US]), rows(&[12], &[NOV_27_US + DAY_US])]),
            ("admissions".into(), vec![rows(&[13], &[NOV_27_US])]),
        ],
        token: String::new(),
    };
    let paths = warehouse.commit(&segment).await.unwrap();
    let names: Vec<String> = paths.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        vec![
            "patients/ingest_date=2026-11-27/part-st-mary-p2-o00000000000000000010-00000000000000000013-f1of3.parquet",
            "patients/ingest_date=2026-11-28/part-st-mary-p2-o00000000000000000010-00000000000000000013-f2of3.parquet",
            "admissions/ingest_date=2026-11-27/part-st-mary-p2-o00000000000000000010-00000000000000000013-f3of3.parquet",
        ]
    );
    assert_eq!(offsets(&warehouse, "patients").await, vec![10, 11, 12]);
    assert_eq!(offsets(&warehouse, "admissions").await, vec![13]);

    let recovered = open(dir.path()).recover("st-mary").await.unwrap();
    assert_eq!(recovered.next.into_iter().collect::<Vec<_>>(), vec![(2, 14)]);
    assert_eq!((recovered.rolled_forward, recovered.removed), (0, 0));
    let other = open(dir.path()).recover("st").await.unwrap();
    assert!(other.next.is_empty(), "another source's files are not its own");
}

#[tokio::test]
async fn recovery_finishes_a_decided_commit_and_removes_an_undecided_one() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = open(dir.path());
    let store = warehouse.storage().store.clone();
    let table_dir = "patients/ingest_date=2026-11-27";
    let file = |first, last, index, count| DataFile {
        source: "labs".into(),
        partition: 0,
        first,
        last,
        index,
        count,
        token: String::new(),
    };
    let bytes = sluice_warehouse::EncodeOptions::default()
        .encode(rows(&[0], &[NOV_27_US]).schema(), &[rows(&[0], &[NOV_27_US])])
        .unwrap();
    let put = |name: String| {
        let store = store.clone();
        let bytes = bytes.clone();
        async move { store.put(&Path::from(format!("{table_dir}/{name}")), PutPayload::from_bytes(bytes)).await.unwrap() }
    };
    // Commit 0..=4 decided: file 1 renamed, file 2 still hidden when the process died.
    put(file(0, 4, 1, 2).file_name()).await;
    put(file(0, 4, 2, 2).hidden_name()).await;
    // Commit 5..=9 undecided: only hidden files, plus debris of an interrupted put.
    put(file(5, 9, 1, 2).hidden_name()).await;
    put(format!("{}.tmp.1", file(5, 9, 2, 2).hidden_name())).await;
    // Another source's hidden file is left alone.
    put(DataFile { source: "other".into(), ..file(0, 0, 1, 1) }.hidden_name()).await;

    let recovered = warehouse.recover("labs").await.unwrap();
    assert_eq!(recovered.next.into_iter().collect::<Vec<_>>(), vec![(0, 5)]);
    assert_eq!((recovered.rolled_forward, recovered.removed), (1, 2));
    let mut names: Vec<String> =
        warehouse.files("patients").await.unwrap().iter().map(|p| p.filename().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, vec![file(0, 4, 1, 2).file_name(), file(0, 4, 2, 2).file_name()]);
    let left: Vec<String> = std::fs::read_dir(dir.path().join(table_dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert_eq!(left, vec![DataFile { source: "other".into(), ..file(0, 0, 1, 1) }.hidden_name()]);
}

#[tokio::test]
async fn bad_urls_say_what_is_wrong() {
    let error = Warehouse::open("s3://bucket/x", WarehouseConfig::default()).unwrap_err().to_string();
    assert_eq!(error, "invalid warehouse URL `s3://bucket/x`: unsupported scheme `s3` (use hdfs:// or file://)");
    let error = Warehouse::open("warehouse", WarehouseConfig::default()).unwrap_err().to_string();
    assert_eq!(error, "invalid warehouse URL `warehouse`: relative URL without a base");
}

/// Several writers of one partition over time (an instance fenced, another taking over): the
/// new owner's recovery finishes the commit the log decided and removes every other hidden
/// file of the partition, whoever wrote it, and leaves partitions it does not own alone.
#[tokio::test]
async fn recovery_of_a_taken_over_partition_keeps_only_the_decided_commit() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = open(dir.path());
    let segment = |partition, first, last, token: &str| Segment {
        source: "labs".into(),
        partition,
        first,
        last,
        tables: vec![("patients".into(), vec![rows(&[first as i64], &[NOV_27_US])])],
        token: token.into(),
    };
    // The former owner ("aa") uploaded 0..=4 and 5..=9; the log decided 0..=4 only.
    let decided = warehouse.upload(&segment(0, 0, 4, "aa")).await.unwrap();
    warehouse.upload(&segment(0, 5, 9, "aa")).await.unwrap();
    // A zombie ("bb") uploaded the same range as the decided commit, and more.
    warehouse.upload(&segment(0, 0, 4, "bb")).await.unwrap();
    warehouse.upload(&segment(0, 0, 7, "bb")).await.unwrap();
    // Partition 1's owner is writing right now.
    let other = warehouse.upload(&segment(1, 0, 3, "cc")).await.unwrap();

    let decisions = [(0, decided.commit_id.clone())].into_iter().collect();
    let recovered = warehouse.recover_partitions("labs", Some(&[0]), &decisions).await.unwrap();
    assert_eq!(decided.commit_id, "o0-4-caa");
    assert_eq!(recovered.next.into_iter().collect::<Vec<_>>(), vec![(0, 5)]);
    assert_eq!((recovered.rolled_forward, recovered.removed), (1, 3));
    assert_eq!(offsets(&warehouse, "patients").await, vec![0], "only the decided commit is visible");

    // The former owner, resumed, publishes what it had decided: already in place, so done.
    assert_eq!(warehouse.publish(&decided).await.unwrap(), decided.committed_paths());
    // Partition 1's upload was left alone: its owner publishes it.
    warehouse.publish(&other).await.unwrap();
    assert_eq!(offsets(&warehouse, "patients").await, vec![0, 0]);
    // A fenced writer whose hidden files were removed cannot publish them.
    let fenced = warehouse.upload(&segment(0, 5, 6, "dd")).await.unwrap();
    warehouse.recover_partitions("labs", Some(&[0]), &decisions).await.unwrap();
    let error = warehouse.publish(&fenced).await.unwrap_err();
    assert!(matches!(error, sluice_warehouse::WarehouseError::Vanished(_)), "{error}");
    assert_eq!(offsets(&warehouse, "patients").await, vec![0, 0]);
}

/// Rows of `rows` without the `name` column (a plugin version that dropped it).
fn rows_without_name(offsets: &[i64], received_at: &[i64]) -> RecordBatch {
    let full = rows(offsets, received_at);
    full.project(&[1, 2]).unwrap()
}

fn segment(table: &str, first: u64, batch: RecordBatch) -> Segment {
    let last = first + batch.num_rows() as u64 - 1;
    Segment {
        source: "lab".into(),
        partition: 0,
        first,
        last,
        tables: vec![(table.into(), vec![batch])],
        token: "a1".into(),
    }
}

/// A table's schema is every column its files have had (a column dropped by the newest file
/// still counts, so it cannot come back retyped), from the records beside the files; a table
/// written before records existed is read from its footers and recorded then.
#[tokio::test]
async fn a_tables_schema_holds_every_column_its_files_have_had() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = open(dir.path());
    assert_eq!(warehouse.written_schema("labs").await.unwrap(), None, "no file yet");
    warehouse.commit(&segment("labs", 0, rows(&[0, 1], &[NOV_27_US; 2]))).await.unwrap();
    warehouse.commit(&segment("labs", 2, rows_without_name(&[2], &[NOV_27_US]))).await.unwrap();
    let names = |schema: &Schema| {
        let mut names = schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
        names.sort();
        names
    };
    let expected = vec!["ingest_offset", "ingest_received_at", "name"];
    assert_eq!(names(&warehouse.written_schema("labs").await.unwrap().unwrap()), expected);
    // Another process (no memory of this one) reads it from the records.
    assert_eq!(names(&open(dir.path()).written_schema("labs").await.unwrap().unwrap()), expected);
    let records: Vec<_> = std::fs::read_dir(dir.path().join("labs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("_sluice_schema-"))
        .collect();
    assert_eq!(records.len(), 2, "one record per schema written: {records:?}");
    assert_eq!(offsets(&warehouse, "labs").await, vec![0, 1, 2], "records are not data");

    // A warehouse from before records: the footers of every file, then a record of them.
    for name in &records {
        std::fs::remove_file(dir.path().join("labs").join(name)).unwrap();
    }
    let recorded = || {
        std::fs::read_dir(dir.path().join("labs"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("_sluice_schema-"))
            .count()
    };
    let older = open(dir.path());
    assert_eq!(names(&older.written_schema("labs").await.unwrap().unwrap()), expected);
    assert_eq!(recorded(), 0, "reading writes nothing");
    // The first writer records what the footers hold, then its own files' schema.
    older.commit(&segment("labs", 3, rows_without_name(&[3], &[NOV_27_US]))).await.unwrap();
    assert_eq!(recorded(), 2);
    assert_eq!(names(&open(dir.path()).written_schema("labs").await.unwrap().unwrap()), expected);
}
