//! The stream core over the embedded spool and a local warehouse, with the real plugins:
//! values and types land as sent, poison records are dead-lettered alone, restarts neither lose
//! nor repeat rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use sluice_log::{Provenance, RecordLog, Run, SpoolConfig, SqliteSpool, StreamLog};
use sluice_runtime::{BatchBuilder, BundledPlugin, PluginEngine, PluginRegistry, SourceTable};
use sluice_stream::{StreamConfig, StreamCore};
use sluice_warehouse::{Warehouse, WarehouseConfig};

struct Harness {
    dir: tempfile::TempDir,
    spool: Arc<SqliteSpool>,
    sources: SourceTable,
    warehouse: Warehouse,
}

fn harness() -> Harness {
    harness_with(2)
}

fn harness_with(partitions: u32) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(sluice_test_plugins::POISON, plugins.join("poison.wasm")).unwrap();
    let bundled: Vec<BundledPlugin> = sluice_plugin_artifacts::BUNDLED.to_vec();
    let engine = PluginEngine::new(Default::default(), None).unwrap();
    let registry = PluginRegistry::open(&engine, Some(&plugins), &bundled).unwrap();
    let sources = SourceTable::new(registry, HashMap::new()).unwrap();
    let spool = Arc::new(
        SqliteSpool::open(SpoolConfig { partitions, ..SpoolConfig::new(dir.path().join("spool.db")) }).unwrap(),
    );
    let warehouse =
        Warehouse::open(&format!("file://{}/warehouse", dir.path().display()), WarehouseConfig::default()).unwrap();
    Harness { dir, spool, sources, warehouse }
}

fn config() -> StreamConfig {
    StreamConfig { roll_interval: Duration::from_millis(50), ..StreamConfig::default() }
}

fn provenance(source: &str, request: &str) -> Provenance {
    Provenance {
        source: source.into(),
        plugin: format!("{source}@0.1.0"),
        plugin_digest: "0".repeat(64),
        user: "hospital".into(),
        received_at_us: 1_795_780_800_000_000, // 2026-11-27T12:00:00Z
        request_id: request.into(),
    }
}

impl Harness {
    /// Splits `body` with the source's plugin (as the API does) and appends the records.
    async fn submit(&self, source: &str, body: &str, request: &str) -> usize {
        self.submit_payloads(source, &[body], request).await
    }

    /// Like `submit`, with several payloads in one request.
    async fn submit_payloads(&self, source: &str, bodies: &[&str], request: &str) -> usize {
        let mut batch = BatchBuilder::new("application/json");
        for body in bodies {
            batch.push(body.as_bytes());
        }
        let split = self.sources.get(source).unwrap().split(&batch.finish()).unwrap();
        let keys = split.output.origins.iter().map(|origin| origin.key.clone()).collect();
        let (content_type, payloads, ends) = split.output.records.into_parts();
        let run = Run::from_parts(content_type, payloads, ends, keys).unwrap();
        let count = run.len();
        self.spool.append(source, &provenance(source, request), run).await.unwrap();
        count
    }

    /// Submits `count` string events (`"event-0"`, ...) to `source` in one request.
    async fn submit_events(&self, source: &str, count: usize, request: &str) -> usize {
        let bodies: Vec<String> = (0..count).map(|i| format!("\"event-{i}\"")).collect();
        let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
        self.submit_payloads(source, &bodies, request).await
    }

    /// Waits until every record appended so far to `source` is committed.
    async fn settled(&self, core: &StreamCore, source: &str) {
        let ends: Vec<(u32, u64)> = (0..self.spool.partitions())
            .map(|p| {
                (p, self.spool.read(source, p, 0, usize::MAX).unwrap().last().map_or(0, |r| r.position.offset + 1))
            })
            .collect();
        let mut positions = core.positions();
        let wait = positions.wait_for(|committed| {
            ends.iter().all(|(p, end)| committed.get(&(source.to_string(), *p)).is_some_and(|next| next >= end))
        });
        tokio::time::timeout(Duration::from_secs(60), wait).await.expect("the stream committed in time").unwrap();
    }

    async fn rows(&self, table: &str) -> Vec<RecordBatch> {
        self.warehouse.read_table(table).await.unwrap().into_iter().map(|(_, b)| b).collect()
    }
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let array = b.column_by_name(column).unwrap().as_string::<i32>().clone();
            (0..array.len()).map(move |i| array.is_valid(i).then(|| array.value(i).to_string())).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_land_with_their_values_types_and_provenance() {
    let h = harness();
    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config());
    let body = r#"[
        {"PatientID":"FB2ABB23-C9D0-4D09-8464-49BF0B982F0F","AdmissionID":"1","LabName":"CBC: HEMOGLOBIN","LabValue":"13.2","LabUnits":"gm/dl","LabDateTime":"1974-07-27 07:10:03.350"},
        {"PatientID":"64182B95-EB72-4E2B-BE77-8050B71498CE","AdmissionID":2,"LabName":"METABOLIC: GLUCOSE","LabValue":"Unknown","LabUnits":"mg/dL","LabDateTime":"6/27/2012"}
    ]"#;
    assert_eq!(h.submit("lab_results", body, "req-1").await, 2);
    h.settled(&core, "lab_results").await;
    core.shutdown().await;

    let batches = h.rows("lab_results").await;
    let schema = batches[0].schema();
    let types: Vec<(String, DataType)> =
        schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let expected_types = vec![
        ("patientid", DataType::Utf8),
        ("admissionid", DataType::Int32),
        ("labname", DataType::Utf8),
        ("labvalue", DataType::Float64),
        ("labunits", DataType::Utf8),
        ("labdatetime", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("ingest_source", DataType::Utf8),
        ("ingest_plugin", DataType::Utf8),
        ("ingest_plugin_digest", DataType::Utf8),
        ("ingest_user", DataType::Utf8),
        ("ingest_request_id", DataType::Utf8),
        ("ingest_received_at", utc),
        ("ingest_partition", DataType::Int32),
        ("ingest_offset", DataType::Int64),
    ];
    assert_eq!(types, expected_types.into_iter().map(|(n, t)| (n.to_string(), t)).collect::<Vec<_>>());

    // One row per record; order across log partitions is not defined, so sort by patient.
    let mut rows: Vec<(String, i32, String, Option<f64>, String, i64)> = Vec::new();
    for batch in &batches {
        let ids = batch.column(0).as_string::<i32>();
        let admissions = batch.column(1).as_primitive::<Int32Type>();
        let names = batch.column(2).as_string::<i32>();
        let values = batch.column(3).as_primitive::<Float64Type>();
        let units = batch.column(4).as_string::<i32>();
        let times = batch.column(5).as_primitive::<TimestampMicrosecondType>();
        for i in 0..batch.num_rows() {
            rows.push((
                ids.value(i).to_string(),
                admissions.value(i),
                names.value(i).to_string(),
                values.is_valid(i).then(|| values.value(i)),
                units.value(i).to_string(),
                times.value(i),
            ));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rows,
        vec![
            (
                "64182B95-EB72-4E2B-BE77-8050B71498CE".into(),
                2,
                "METABOLIC: GLUCOSE".into(),
                None,
                "mg/dL".into(),
                1_340_755_200_000_000
            ),
            (
                "FB2ABB23-C9D0-4D09-8464-49BF0B982F0F".into(),
                1,
                "CBC: HEMOGLOBIN".into(),
                Some(13.2),
                "gm/dl".into(),
                144_141_003_350_000
            ),
        ]
    );
    assert_eq!(strings(&batches, "ingest_source"), vec![Some("lab_results".into()); 2]);
    assert_eq!(strings(&batches, "ingest_user"), vec![Some("hospital".into()); 2]);
    assert_eq!(strings(&batches, "ingest_request_id"), vec![Some("req-1".into()); 2]);
    let plugin = h.sources.get("lab_results").unwrap().plugin().unwrap();
    assert_eq!(strings(&batches, "ingest_plugin"), vec![Some(plugin.id()); 2]);
    assert_eq!(strings(&batches, "ingest_plugin_digest"), vec![Some(plugin.digest().to_string()); 2]);
    let files = h.warehouse.files("lab_results").await.unwrap();
    assert!(
        files.iter().all(|f| f.as_ref().starts_with("lab_results/ingest_date=2026-11-27/part-lab_results-p")),
        "{files:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_record_is_dead_lettered_alone_and_its_neighbours_land() {
    // (And a record `transform` says nothing of is dead-lettered, not dropped.)
    // One partition and one request: the five records reach the plugin as one batch, which traps.
    let h = harness_with(1);
    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config());
    let bodies = [r#""good-1""#, r#""POISON""#, r#""good-2""#, r#""REJECT me""#, r#""good-3""#, r#""SKIP me""#];
    assert_eq!(h.submit_payloads("poison", &bodies, "r1").await, 6);
    h.settled(&core, "poison").await;
    core.shutdown().await;

    let mut values: Vec<Option<String>> = strings(&h.rows("events").await, "value");
    values.sort();
    let quoted = |s: &str| Some(format!("\"{s}\""));
    assert_eq!(values, vec![quoted("good-1"), quoted("good-2"), quoted("good-3")]);
    let letters = h.spool.dead_letters("poison", 0, 100).await.unwrap();
    let mut dead: Vec<(String, String)> = letters
        .iter()
        .map(|l| (String::from_utf8(l.entry.record.record.payload.clone()).unwrap(), l.entry.reason.clone()))
        .collect();
    dead.sort();
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert_eq!(dead[0].0, "\"POISON\"");
    assert!(dead[0].1.starts_with("plugin poison@0.1.0 trapped: "), "{}", dead[0].1);
    assert!(dead[0].1.contains("poison record"), "{}", dead[0].1);
    assert_eq!(dead[1], ("\"REJECT me\"".into(), "the record is marked REJECT".into()));
    // A record the plugin gave neither a row nor a rejection is not lost without a word.
    assert_eq!(dead[2], ("\"SKIP me\"".into(), sluice_stream::NO_OUTCOME.into()));
    assert!(letters.iter().all(|l| l.entry.plugin == "poison@0.1.0" && l.entry.record.provenance.source == "poison"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_after_the_last_commit_without_repeating_rows() {
    let h = harness();
    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config());
    let record = |i: usize| {
        format!(
            r#"{{"PatientID":"P{i}","AdmissionID":{i},"LabName":"X","LabValue":1,"LabUnits":"u","LabDateTime":"2012-06-27"}}"#
        )
    };
    let first: Vec<String> = (0..50).map(record).collect();
    h.submit("lab_results", &format!("[{}]", first.join(",")), "a").await;
    h.settled(&core, "lab_results").await;
    core.shutdown().await;

    // Records appended while the stream is down are picked up by the next one.
    let second: Vec<String> = (50..120).map(record).collect();
    h.submit("lab_results", &format!("[{}]", second.join(",")), "b").await;
    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config());
    h.settled(&core, "lab_results").await;
    core.shutdown().await;

    let batches = h.rows("lab_results").await;
    let mut admissions: Vec<i32> = batches
        .iter()
        .flat_map(|b| b.column_by_name("admissionid").unwrap().as_primitive::<Int32Type>().values().to_vec())
        .collect();
    admissions.sort_unstable();
    assert_eq!(admissions, (0..120).collect::<Vec<i32>>());
    let mut positions: Vec<(i32, i64)> = batches
        .iter()
        .flat_map(|b| {
            let p = b.column_by_name("ingest_partition").unwrap().as_primitive::<Int32Type>().values().to_vec();
            let o = b.column_by_name("ingest_offset").unwrap().as_primitive::<Int64Type>().values().to_vec();
            p.into_iter().zip(o).collect::<Vec<_>>()
        })
        .collect();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 120, "every (partition, offset) once");
    drop(h.dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_roll_by_record_count_and_an_idle_partition_rolls_by_time() {
    let h = harness_with(1);
    let config =
        StreamConfig { roll_records: 10, roll_interval: Duration::from_millis(200), ..StreamConfig::default() };
    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config);
    h.submit_events("poison", 25, "r1").await;
    // Nothing else arrives: the last 5 rows are committed by age alone.
    h.settled(&core, "poison").await;
    core.shutdown().await;
    let ranges: Vec<(u64, u64)> = h
        .warehouse
        .files("events")
        .await
        .unwrap()
        .iter()
        .map(|path| {
            let (file, _) = sluice_warehouse::DataFile::parse(path.filename().unwrap()).unwrap();
            (file.first, file.last)
        })
        .collect();
    assert_eq!(ranges, vec![(0, 9), (10, 19), (20, 24)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_that_goes_quiet_is_committed_without_waiting_out_the_roll_interval() {
    let h = harness_with(1);
    // No roll by age for an hour: only the partition's silence can commit these rows in time.
    let config = StreamConfig {
        roll_interval: Duration::from_secs(3600),
        roll_idle: Some(Duration::from_millis(100)),
        ..StreamConfig::default()
    };
    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config);
    h.submit_events("poison", 5, "r1").await;
    h.settled(&core, "poison").await;
    assert_eq!(h.warehouse.row_count("events").await.unwrap(), 5);
    core.shutdown().await;
}

#[test]
fn a_quiet_partition_is_due_a_quarter_of_the_roll_interval_after_its_last_records_unless_set() {
    let config = StreamConfig { roll_interval: Duration::from_secs(40), ..StreamConfig::default() };
    assert_eq!(config.roll_idle(), Duration::from_secs(10));
    let config = StreamConfig { roll_idle: Some(Duration::from_secs(3)), ..config };
    assert_eq!(config.roll_idle(), Duration::from_secs(3));
    let zero = StreamConfig { roll_idle: Some(Duration::ZERO), ..config };
    assert_eq!(zero.check().unwrap_err().to_string(), "stream.roll_idle must be at least 1ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_memory_budget_rows_are_committed_without_waiting_for_a_roll() {
    let h = harness_with(1);
    // No roll would happen for an hour or a million rows; a one-byte budget forces each chunk out.
    let config = StreamConfig {
        roll_records: 1_000_000,
        roll_interval: Duration::from_secs(3600),
        memory_budget: bytesize::ByteSize(1),
        ..StreamConfig::default()
    };
    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config);
    h.submit_events("poison", 5, "r1").await;
    h.settled(&core, "poison").await;
    assert_eq!(h.warehouse.row_count("events").await.unwrap(), 5);
    core.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_of_an_incompatible_schema_change_are_dead_lettered_and_nothing_is_written() {
    use arrow::array::{Int64Array, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};
    let h = harness_with(1);
    // The table's existing files have `value` as a 64-bit integer; the poison plugin writes text.
    let schema = Arc::new(Schema::new(vec![
        Field::new("value", DataType::Int64, true),
        Field::new("ingest_received_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]));
    let old = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(TimestampMicrosecondArray::from(vec![1_795_780_800_000_000]).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let segment = sluice_warehouse::Segment {
        source: "legacy".into(),
        partition: 0,
        first: 0,
        last: 0,
        tables: vec![("events".into(), vec![old])],
        token: String::new(),
    };
    h.warehouse.commit(&segment).await.unwrap();

    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config());
    h.submit_payloads("poison", &[r#""one""#, r#""two""#], "r1").await;
    h.settled(&core, "poison").await;
    core.shutdown().await;

    let files = h.warehouse.files("events").await.unwrap();
    assert_eq!(files.len(), 1, "only the old file: {files:?}");
    let letters = h.spool.dead_letters("poison", 0, 10).await.unwrap();
    assert_eq!(letters.len(), 2);
    for letter in letters {
        assert_eq!(
            letter.entry.reason,
            "table `events`: incompatible schema change: column `value` changed from Int64 to Utf8; nothing was written"
        );
    }
}

/// A plugin rolled back to a version without a nullable column a later version added: its rows
/// are written (the column reads NULL in them), not dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_to_a_version_without_a_nullable_column_keeps_writing() {
    use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};
    let h = harness_with(1);
    // Existing files come from a later version: the poison plugin's columns plus `score`.
    let plugin = h.sources.get("poison").unwrap().plugin().unwrap();
    let current = sluice_stream::table_schema(&plugin.manifest().tables[0]);
    let mut fields: Vec<Field> = current.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.insert(1, Field::new("score", DataType::Float64, true));
    let columns: Vec<ArrayRef> = fields
        .iter()
        .map(|field| -> ArrayRef {
            match field.data_type() {
                DataType::Float64 => Arc::new(Float64Array::from(vec![1.5])),
                DataType::Int32 => Arc::new(Int32Array::from(vec![0])),
                DataType::Int64 => Arc::new(Int64Array::from(vec![0])),
                DataType::Timestamp(..) => {
                    Arc::new(TimestampMicrosecondArray::from(vec![1_795_780_800_000_000]).with_timezone("UTC"))
                }
                _ => Arc::new(StringArray::from(vec!["from v2"])),
            }
        })
        .collect();
    let later = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let segment = sluice_warehouse::Segment {
        source: "legacy".into(),
        partition: 0,
        first: 0,
        last: 0,
        tables: vec![("events".into(), vec![later])],
        token: String::new(),
    };
    h.warehouse.commit(&segment).await.unwrap();

    let core = StreamCore::start(h.spool.clone(), h.warehouse.clone(), h.sources.clone(), config());
    h.submit_payloads("poison", &[r#""one""#, r#""two""#], "r1").await;
    h.settled(&core, "poison").await;
    core.shutdown().await;

    assert!(h.spool.dead_letters("poison", 0, 10).await.unwrap().is_empty(), "nothing was dead-lettered");
    assert_eq!(h.warehouse.row_count("events").await.unwrap(), 3);
    assert_eq!(h.warehouse.files("events").await.unwrap().len(), 2);
}
