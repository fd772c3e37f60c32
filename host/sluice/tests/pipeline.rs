//! The whole pipeline against a real Apache Kafka and a real HDFS: API -> Kafka -> stream ->
//! Parquet on HDFS. `tests/run` starts both services (tests/services/) and exports where they
//! listen; these tests fail, saying so, when they are not running.
//!
//! The tests share the services and stop/start them, so they run one at a time.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_log::{Provenance, Run, StoredRun};
use sluice_runtime::{BatchBuilder, BundledPlugin, PluginEngine, PluginRegistry, SourceTable};
use sluice_warehouse::{Warehouse, WarehouseConfig};

mod common;

use common::feed::{Feeder, PASSWORD, Posted, lab_results, post, post_until_accepted};
use common::seed;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start the services with tests/services/kafka.sh, hdfs.sh and trino.sh (tests/run does)"
        )
    })
}

/// Runs `tests/services/<script> <action>` and checks it worked.
fn service(script: &str, action: &str) {
    let status = Command::new(repo().join("tests/services").join(script)).arg(action).status().unwrap();
    assert!(status.success(), "tests/services/{script} {action} failed");
}

/// One sluice deployment: its own data directory, topics, groups and warehouse directory.
struct Deployment {
    dir: tempfile::TempDir,
    config: PathBuf,
    warehouse_url: String,
}

/// A deployment with the bundled plugins and the `poison` test plugin.
fn deployment(tag: &str) -> Deployment {
    deployment_with(tag, "", true)
}

fn deployment_with(tag: &str, extra_config: &str, with_poison: bool) -> Deployment {
    let kafka = required_env("SLUICE_TEST_KAFKA");
    let hdfs = required_env("SLUICE_TEST_HDFS");
    let unique = format!("{tag}{}x{}", std::process::id(), Instant::now().elapsed().as_nanos() ^ now_us() as u128);
    let dir = tempfile::tempdir().unwrap();
    let warehouse_url = format!("{hdfs}/tests/{unique}");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\nkind = \"kafka\"\npartitions = 4\n[kafka]\nbrokers = \"{kafka}\"\ntopic_prefix = \"{unique}.\"\n\
             transactional_id = \"{unique}\"\ngroup_prefix = \"{unique}\"\nappend_timeout = \"5s\"\n\
             [warehouse]\nurl = \"{warehouse_url}\"\n[stream]\nroll_interval = \"300ms\"\n{extra_config}"
        ),
    )
    .unwrap();
    let plugins = dir.path().join("data/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    if with_poison {
        std::fs::copy(sluice_test_plugins::POISON, plugins.join("poison.wasm")).unwrap();
    }
    let deployment = Deployment { dir, config, warehouse_url };
    let mut add = deployment.sluice();
    add.args(["users", "add", "feeder", "--password-stdin"]).stdin(Stdio::piped());
    let mut child = add.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    for source in ["patients", "admissions", "lab_results", "poison"] {
        assert!(deployment.sluice().args(["grants", "add", "feeder", source]).status().unwrap().success());
    }
    deployment
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}

impl Deployment {
    fn sluice(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .env_remove("SLUICE_PLUGINS_DIR")
            .env("SLUICE_CONFIG", &self.config)
            .stdout(Stdio::null());
        command
    }

    /// Starts `sluice serve` and waits for its banner.
    fn start(&self) -> Server {
        self.start_on("127.0.0.1:0")
    }

    /// Starts `sluice serve` on `address` and waits for its banner.
    fn start_on(&self, address: &str) -> Server {
        self.start_with(address, &[])
    }

    /// Starts `sluice serve` on `address` with extra environment variables.
    fn start_with(&self, address: &str, env: &[(&str, &str)]) -> Server {
        let mut command = self.sluice();
        command.envs(env.iter().copied());
        let mut child = command.args(["serve", "--listen", address]).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first.trim().strip_prefix("sluice listening on ").unwrap_or_else(|| panic!("no banner: {first:?}"));
        // Keep reading so that the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        Server { child, url: url.to_string() }
    }

    fn warehouse(&self) -> Warehouse {
        Warehouse::open(&self.warehouse_url, WarehouseConfig::default()).unwrap()
    }

    /// Waits until `table` holds at least `rows` rows (or fails after `limit`), and returns them.
    fn wait_rows(&self, table: &str, rows: usize, limit: Duration) -> Vec<RecordBatch> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let warehouse = self.warehouse();
        let deadline = Instant::now() + limit;
        loop {
            let batches: Vec<RecordBatch> = runtime
                .block_on(warehouse.read_table(table))
                .map(|all| all.into_iter().map(|(_, b)| b).collect())
                .unwrap_or_default();
            let count: usize = batches.iter().map(RecordBatch::num_rows).sum();
            if count >= rows {
                return batches;
            }
            assert!(Instant::now() < deadline, "{table} holds {count} rows, expected {rows}, after {limit:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// A running server; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait: the stream commits what it holds.
    fn stop(mut self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success(), "sluice exits cleanly on SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn column_i32(batches: &[RecordBatch], name: &str) -> Vec<i32> {
    batches.iter().flat_map(|b| b.column_by_name(name).unwrap().as_primitive::<Int32Type>().values().to_vec()).collect()
}

/// Checks the exactly-once invariants of `table` and returns its `admissionid` values: no
/// (partition, offset) twice, every acknowledged id exactly once, nothing that was not sent.
fn check_exactly_once(batches: &[RecordBatch], acked: &HashSet<i32>, unknown: &HashSet<i32>) {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let partitions = column_i32(batches, "ingest_partition");
    let offsets: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column_by_name("ingest_offset").unwrap().as_primitive::<Int64Type>().values().to_vec())
        .collect();
    let positions: HashSet<(i32, i64)> = partitions.into_iter().zip(offsets).collect();
    assert_eq!(positions.len(), rows, "a log position appears twice");
    let mut seen: HashMap<i32, usize> = HashMap::new();
    for id in column_i32(batches, "admissionid") {
        *seen.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records written more than once: {twice:?}");
    let missing: Vec<_> = acked.iter().filter(|id| !seen.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "{} accepted records are missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let foreign: Vec<_> = seen.keys().filter(|id| !acked.contains(id) && !unknown.contains(id)).collect();
    assert!(foreign.is_empty(), "rows nobody sent: {foreign:?}");
}

/// The rows `source`'s plugin makes of `body`, run in-process: the expected content of the table
/// (plugin columns only), as sorted display strings.
fn expected_rows(source: &str, content_type: &str, body: &[u8]) -> (sluice_runtime::TableSchema, Vec<String>) {
    let bundled: Vec<BundledPlugin> = sluice_plugin_artifacts::BUNDLED.to_vec();
    let engine = PluginEngine::new(Default::default(), None).unwrap();
    let registry = PluginRegistry::open(&engine, None, &bundled).unwrap();
    let sources = SourceTable::new(registry, HashMap::new()).unwrap();
    let source_handle = sources.get(source).unwrap();
    let mut batch = BatchBuilder::new(content_type);
    batch.push(body);
    let split = source_handle.split(&batch.finish()).unwrap().output;
    let provenance = Arc::new(Provenance {
        source: source.into(),
        plugin: String::new(),
        plugin_digest: String::new(),
        user: String::new(),
        received_at_us: 0,
        request_id: String::new(),
    });
    let keys = vec![None; split.records.len()];
    let (content_type, payloads, ends) = split.records.into_parts();
    let run = StoredRun {
        partition: 0,
        first: 0,
        run: Run::from_parts(content_type, payloads, ends, keys).unwrap(),
        provenance: provenance.clone(),
    };
    let outcome = sluice_stream::transform(&source_handle, &[run]).unwrap();
    let plugin = source_handle.plugin().unwrap();
    let table = plugin.manifest().tables[0].clone();
    let batches: Vec<RecordBatch> = outcome.tables.into_iter().map(|(_, b)| b).collect();
    (table.clone(), display_rows(&batches, table.columns.len()))
}

/// Each row's first `columns` values as text, sorted.
fn display_rows(batches: &[RecordBatch], columns: usize) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter<'_>> =
            (0..columns).map(|c| ArrayFormatter::try_new(batch.column(c).as_ref(), &options).unwrap()).collect();
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join(" | "));
        }
    }
    rows.sort();
    rows
}

#[test]
fn records_posted_to_the_api_land_on_hdfs_with_every_value_and_type() {
    let _serial = serial();
    let deployment = deployment("values");
    let server = deployment.start();
    let inputs = [
        ("patients", "text/tab-separated-values", "patients.tsv"),
        ("admissions", "application/json", "admissions.json"),
        ("lab_results", "text/csv", "lab_results.csv"),
    ];
    for (source, content_type, file) in inputs {
        let body = std::fs::read(repo().join("tests/data").join(file)).unwrap();
        let (table, expected) = expected_rows(source, content_type, &body);
        let accepted = post_until_accepted(&server.url, source, content_type, &body);
        assert_eq!(accepted, expected.len(), "{source}: the API accepted what the plugin accepts");
        let batches = deployment.wait_rows(&table.name, expected.len(), Duration::from_secs(120));
        let schema = sluice_stream::table_schema(&table);
        for batch in &batches {
            assert_eq!(batch.schema(), schema, "{source}: Parquet keeps the plugin's types and the provenance columns");
        }
        assert_eq!(display_rows(&batches, table.columns.len()), expected, "{source}: values");
        let users: HashSet<String> = batches
            .iter()
            .flat_map(|b| {
                let users = b.column_by_name("ingest_user").unwrap().as_string::<i32>().clone();
                (0..users.len()).map(move |i| users.value(i).to_string()).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(users, HashSet::from(["feeder".to_string()]));
    }
    server.stop();
}

#[test]
fn a_poison_record_goes_to_the_dead_letter_topic_alone() {
    let _serial = serial();
    let deployment = deployment("poison");
    let server = deployment.start();
    let body = "\"good-1\"\n\"POISON\"\n\"good-2\"\n\"good-3\"\n";
    let accepted = post_until_accepted(&server.url, "poison", "application/json", body.as_bytes());
    assert_eq!(accepted, 4);
    let batches = deployment.wait_rows("events", 3, Duration::from_secs(120));
    let values: Vec<String> = display_rows(&batches, 1);
    assert_eq!(values, vec!["\"good-1\"", "\"good-2\"", "\"good-3\""]);
    server.stop();

    let output = deployment
        .sluice()
        .args(["dlq", "list", "poison", "--format", "json"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let entries = listed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert!(entries[0]["reason"].as_str().unwrap().contains("poison record"), "{listed}");
    assert_eq!(entries[0]["plugin"], "poison@0.1.0");
    assert_eq!(entries[0]["offset"], 1, "the poison record's original position");
}

#[test]
fn sigkill_at_random_moments_neither_loses_nor_duplicates_accepted_records() {
    let _serial = serial();
    let deployment = deployment("crash");
    let mut server = deployment.start();
    let feeder = Feeder::new(&server.url);
    let total = 120_000;
    let started = Instant::now();
    let feeding = feeder.spawn(total, 500);
    // A small xorshift generator; the seed is printed so that a failing run can be repeated.
    let mut seed = std::env::var("SLUICE_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(now_us() as u64 | 1);
    println!("crash test seed {seed}");
    let mut kills = 0;
    while kills < 6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 2500));
        server.kill();
        kills += 1;
        server = deployment.start();
        *feeder.url.lock().unwrap() = server.url.clone();
    }
    feeding.join().unwrap();
    let acked = feeder.acked.lock().unwrap().clone();
    let unknown = feeder.unknown.lock().unwrap().clone();
    println!("{kills} kills; {} records acknowledged, {} with unknown outcome", acked.len(), unknown.len());
    assert!(acked.len() >= 100_000, "at least 100k accepted records");
    let batches = deployment.wait_rows("lab_results", acked.len(), Duration::from_secs(300));
    let elapsed = started.elapsed();
    server.stop();
    let batches = {
        // Let the last commits of the clean stop land before the final count.
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        deployment.wait_rows("lab_results", rows, Duration::from_secs(60))
    };
    check_exactly_once(&batches, &acked, &unknown);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    println!(
        "crash test: {rows} rows in {elapsed:.1?} with {kills} SIGKILLs: {:.0} records/s end to end",
        rows as f64 / elapsed.as_secs_f64()
    );
}

/// `sluice_records_accepted_total` as the server's /metrics reports it (0 before the first).
fn accepted_so_far(url: &str) -> f64 {
    common::metric_total(url, "sluice_records_accepted_total")
}

/// Whether the server is holding back answers of stored records right now (fault injection).
fn answers_held(url: &str) -> bool {
    common::metric_total(url, "sluice_fault_answers_held") > 0.0
}

/// With the Kafka log: a sender retrying under idempotency keys (the simulator) gets every
/// record onto HDFS exactly once, though sluice is SIGKILLed mid-run and started again.
#[test]
fn retries_under_idempotency_keys_land_exactly_once_across_a_kill_with_kafka() {
    let _serial = serial();
    let deployment = deployment_with("retry", "", false);
    let address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    // Answers are held after the records are durable, so that kills lose answers of stored
    // records (without that, the window is microseconds and a kill rarely hits it): 50 ms while
    // records flow for the first two kills; for the third, far longer than a kill takes, so that
    // it certainly catches answers of stored requests.
    let holds = ["50", "50", "8000"];
    let fault = |hold: &'static str| [("SLUICE_FAULT_ANSWER_DELAY_MS", hold)];
    let mut server = deployment.start_with(&address, &fault(holds[0]));
    let url = server.url.clone();
    const RECORDS: usize = 20_000;
    let simulate = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_PASSWORD", PASSWORD)
        .args(["simulate", "--url", &url, "--user", "feeder", "--generate", "patients"])
        .args(["--count", &RECORDS.to_string(), "--batch", "25", "--connections", "12", "--retries", "100"])
        .args(["--timeout", "10s", "--seed", "5", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A flowing server is killed once it has taken another 2,000 records and holds answers;
    // the long-holding one as soon as it holds one.
    let deadline = Instant::now() + Duration::from_secs(180);
    for (kill, hold) in holds.iter().enumerate() {
        let flowing = *hold == "50";
        while (flowing && accepted_so_far(&server.url) < 2000.0) || !answers_held(&server.url) {
            assert!(Instant::now() < deadline, "kill {}: the simulator's records never arrived", kill + 1);
            std::thread::sleep(Duration::from_millis(20));
        }
        server.kill();
        server = deployment.start_with(&address, &fault(holds.get(kill + 1).copied().unwrap_or("50")));
    }
    let output = simulate.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report["accepted"].as_u64(), report["errors"].as_u64()), (Some(RECORDS as u64), Some(0)), "{report}");
    assert!(report["retries"].as_u64().unwrap() > 0, "the kill interrupted requests: {report}");
    assert!(report["replayed"].as_u64().unwrap() > 0, "some retries were of stored requests: {report}");
    deployment.wait_rows("patients", RECORDS, Duration::from_secs(180));
    server.stop();
    let batches = deployment.wait_rows("patients", RECORDS, Duration::from_secs(60));
    let ids: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let column = b.column_by_name("patientid").unwrap().as_string::<i32>().clone();
            (0..column.len()).map(move |i| column.value(i).to_string()).collect::<Vec<_>>()
        })
        .collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (RECORDS, RECORDS), "every record once: {report}");
}

#[test]
fn hdfs_and_kafka_outages_lose_and_duplicate_nothing_and_the_api_says_503_while_kafka_is_down() {
    let _serial = serial();
    let deployment = deployment("outage");
    let server = deployment.start();
    let feeder = Feeder::new(&server.url);
    let feeding = feeder.spawn(i32::MAX, 200);
    deployment.wait_rows("lab_results", 2_000, Duration::from_secs(120));

    // HDFS down: the API keeps accepting (Kafka holds the records), the stream waits.
    service("hdfs.sh", "stop-datanode");
    service("hdfs.sh", "stop-namenode");
    let during_hdfs_outage = feeder.acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while feeder.acked.lock().unwrap().len() < during_hdfs_outage + 2_000 {
        assert!(Instant::now() < deadline, "the API stopped accepting while only HDFS was down");
        std::thread::sleep(Duration::from_millis(100));
    }
    service("hdfs.sh", "start");

    // Kafka down: /readyz says so within a couple of seconds, the API answers 503 within its
    // append timeout (5 s here) and accepts nothing.
    service("kafka.sh", "stop");
    let stopped = Instant::now();
    loop {
        let ready = reqwest::blocking::get(format!("{}/readyz", server.url)).unwrap().status().as_u16();
        if ready == 503 {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "/readyz still said 200 {:?} after Kafka stopped",
            stopped.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("/readyz said 503 {:?} after Kafka stopped", stopped.elapsed());
    let before = feeder.unavailable.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while feeder.unavailable.load(Ordering::SeqCst) < before + 3 {
        assert!(Instant::now() < deadline, "no 503 while Kafka was down");
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = Instant::now();
    match post(&server.url, "lab_results", "application/json", lab_results(-10, 1)) {
        Posted::Status(503, body) => assert!(body.contains("unavailable"), "{body}"),
        other => panic!("expected 503 while Kafka is down, got {other:?}"),
    }
    assert!(asked.elapsed() < Duration::from_secs(6), "a 503 took {:?}, past the 5 s append timeout", asked.elapsed());
    service("kafka.sh", "start");
    let resumed = feeder.acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(120);
    while feeder.acked.lock().unwrap().len() < resumed + 2_000 {
        assert!(Instant::now() < deadline, "the API did not recover after Kafka came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    feeder.stop.store(true, Ordering::SeqCst);
    feeding.join().unwrap();

    let acked = feeder.acked.lock().unwrap().clone();
    let unknown = feeder.unknown.lock().unwrap().clone();
    let batches = deployment.wait_rows("lab_results", acked.len(), Duration::from_secs(300));
    server.stop();
    check_exactly_once(&batches, &acked, &unknown);
    assert!(unknown.is_empty(), "no request broke mid-way: {} unknown", unknown.len());
}

#[test]
fn the_seed_queries_in_trino_match_what_was_sent_and_accepted() {
    let _serial = serial();
    let trino = required_env("SLUICE_TEST_TRINO");
    let schema = format!("s{}x{}", std::process::id(), now_us());
    let deployment = deployment_with(
        "trino",
        &format!("[catalog]\ntrino_url = \"{trino}\"\nschema = \"{schema}\"\nrescan = \"2s\"\n"),
        false,
    );
    let server = deployment.start();
    let mut sluice = deployment.sluice();
    sluice.env("SLUICE_PASSWORD", PASSWORD);
    let sent = seed::simulate_seed(sluice, &server.url, deployment.dir.path());
    seed::check_seed_queries(&trino, &schema, &sent, Duration::from_secs(180));
    server.stop();
}

#[test]
fn the_catalog_adds_compatible_columns_and_refuses_incompatible_changes() {
    use arrow::datatypes::{DataType, Field, Schema};
    let _serial = serial();
    let trino = required_env("SLUICE_TEST_TRINO");
    let hdfs = required_env("SLUICE_TEST_HDFS");
    let schema = format!("evolve{}x{}", std::process::id(), now_us());
    let location = format!("{hdfs}/tests/{schema}");
    let warehouse = Warehouse::open(&location, WarehouseConfig::default()).unwrap();
    let client = sluice_catalog::TrinoClient::new(&trino, "sluice");
    let sync = sluice_catalog::CatalogSync::new(client, "hive", &schema, &location).with_warehouse(warehouse);
    let table = |fields: Vec<Field>| sluice_catalog::TableDef {
        name: "events".into(),
        schema: Arc::new(Schema::new(fields)),
        location: format!("{location}/events"),
        partition_key: "ingest_date".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(sync.ensure_schema()).unwrap();
    let v1 = vec![Field::new("value", DataType::Utf8, true)];
    runtime.block_on(sync.ensure_table(&table(v1.clone()))).unwrap();
    let mut v2 = v1.clone();
    v2.push(Field::new("score", DataType::Float64, true));
    runtime.block_on(sync.ensure_table(&table(v2))).unwrap();
    let columns: Vec<(String, String)> = runtime
        .block_on(sync.client().execute(&format!("describe hive.{schema}.events")))
        .unwrap()
        .into_iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        columns,
        vec![
            ("value".into(), "varchar".into()),
            ("score".into(), "double".into()),
            ("ingest_date".into(), "date".into())
        ]
    );
    let retyped = vec![Field::new("value", DataType::Int64, true), Field::new("score", DataType::Float64, true)];
    let error = runtime.block_on(sync.ensure_table(&table(retyped))).unwrap_err().to_string();
    assert_eq!(error, "table `events`: incompatible schema change: column `value` changed from varchar to bigint");
    // A version without `score` (a rollback): the column stays, its new rows read NULL.
    let rolled_back = vec![Field::new("value", DataType::Utf8, true)];
    runtime.block_on(sync.ensure_table(&table(rolled_back))).unwrap();
    let after: Vec<String> = runtime
        .block_on(sync.client().execute(&format!("describe hive.{schema}.events")))
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(after, vec!["value", "score", "ingest_date"]);
}

impl Deployment {
    /// Starts `sluice serve` whose configuration has one `[[mllp]]` listener, and its address.
    fn start_mllp(&self) -> (Server, std::net::SocketAddr) {
        let mut child =
            self.sluice().args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("sluice listening on ").unwrap_or_else(|| panic!("no banner: {line:?}"));
        let server = Server { child, url: url.to_string() };
        loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the banner names the MLLP listener");
            if let Some(rest) = line.strip_prefix("MLLP on ") {
                let address = rest.split_whitespace().next().unwrap().parse().unwrap();
                std::thread::spawn(move || for _ in stdout.lines() {});
                return (server, address);
            }
        }
    }
}

/// Every shared HL7 v2 sample file, its MSH-10s prefixed with the file's number: the samples reuse
/// control ids across files (`MSG00001` in many), which in one source would be resends.
fn hl7_samples() -> Vec<(String, Vec<u8>)> {
    let root = repo().join("tests/data/hl7v2-samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|d| d.is_dir())
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|f| f.unwrap().path()))
        .filter(|f| !f.file_name().unwrap().to_string_lossy().starts_with("LICENSE"))
        .collect();
    files.sort();
    files
        .into_iter()
        .enumerate()
        .map(|(index, file)| {
            let bytes = std::fs::read(&file).unwrap();
            let prefixed = bytes
                .split_inclusive(|&b| b == b'\r' || b == b'\n')
                .flat_map(|line| {
                    let at = line.windows(3).position(|w| w == b"MSH");
                    match at {
                        Some(at) if line.len() > at + 3 => {
                            let separator = line[at + 3];
                            let mut fields: Vec<Vec<u8>> =
                                line.split(|&b| b == separator).map(<[u8]>::to_vec).collect();
                            if fields.len() > 9 && !fields[9].is_empty() {
                                fields[9] = [format!("f{index:02}-").into_bytes(), fields[9].clone()].concat();
                            }
                            fields.join(&separator)
                        }
                        _ => line.to_vec(),
                    }
                })
                .collect();
            (file.strip_prefix(&root).unwrap().display().to_string(), prefixed)
        })
        .collect()
}

/// A file's messages, one per frame: a frame starts at each MSH segment; what comes before the
/// first (stray segments) stays with the first; batch envelopes (FHS, BHS, BTS, FTS) are left out.
fn frames_of(body: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let (mut current, mut has_message) = (Vec::new(), false);
    for line in body.split_inclusive(|&b| b == b'\r' || b == b'\n') {
        // A sender sends bare messages over MLLP: a file's batch envelopes stay behind.
        if [b"FHS", b"BHS", b"BTS", b"FTS"].iter().any(|envelope| line.trim_ascii_start().starts_with(*envelope)) {
            continue;
        }
        if line.trim_ascii_start().starts_with(b"MSH") {
            if has_message {
                frames.push(std::mem::take(&mut current));
            }
            has_message = true;
        }
        current.extend_from_slice(line);
    }
    if !current.trim_ascii().is_empty() {
        frames.push(current);
    }
    frames
}

/// Whether the first segment of `frame` after blank lines and batch headers is an MSH.
fn starts_with_msh(frame: &[u8]) -> bool {
    frame
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(frame)
        .split(|&b| b == b'\r' || b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|line| !line.is_empty() && !line.starts_with(b"FHS") && !line.starts_with(b"BHS"))
        .is_some_and(|line| line.starts_with(b"MSH"))
}

/// Sends `message` in an MLLP frame and reads its acknowledgement's MSA.
fn mllp_exchange(stream: &mut std::net::TcpStream, message: &[u8]) -> String {
    use std::io::{Read, Write};
    stream.write_all(&sluice_api::mllp_frame(message)).unwrap();
    let mut ack = Vec::new();
    let mut byte = [0u8; 1];
    while !ack.ends_with(&[0x1C, 0x0D]) {
        stream.read_exact(&mut byte).unwrap();
        ack.push(byte[0]);
    }
    let text = String::from_utf8(ack[1..ack.len() - 2].to_vec()).unwrap();
    text.split('\r').find(|s| s.starts_with("MSA|")).unwrap_or_default().to_string()
}

#[test]
fn hl7_samples_sent_over_mllp_are_queryable_in_trino_once_each() {
    use sluice_plugin_sdk::Plugin as _;
    let _serial = serial();
    let trino = required_env("SLUICE_TEST_TRINO");
    let schema = format!("h{}x{}", std::process::id(), now_us());
    let deployment = deployment_with(
        "hl7",
        &format!(
            "[catalog]\ntrino_url = \"{trino}\"\nschema = \"{schema}\"\nrescan = \"2s\"\n\
             [[mllp]]\nlisten = \"127.0.0.1:0\"\nsource = \"hl7v2\"\nuser = \"feeder\"\n"
        ),
        false,
    );
    assert!(deployment.sluice().args(["grants", "add", "feeder", "hl7v2"]).status().unwrap().success());
    let (server, address) = deployment.start_mllp();

    // What the plugin makes of each file (its own tests check that value by value): the rows
    // each table must end up with, and the acknowledgement each file must get.
    let plugin =
        hl7v2::Hl7v2::configure(&sluice_plugin_sdk::Settings::new(&hl7v2::Hl7v2::manifest().settings, &[]).unwrap())
            .unwrap();
    let mut expected: HashMap<&str, usize> = HashMap::new();
    let mut expected_acks = Vec::new();
    // MLLP carries one message per frame: each file is sent message by message.
    let samples: Vec<(String, Vec<u8>)> = hl7_samples()
        .into_iter()
        .flat_map(|(file, body)| {
            frames_of(&body).into_iter().enumerate().map(move |(n, frame)| (format!("{file} #{n}"), frame))
        })
        .collect();
    let mut ids = HashSet::new();
    for (_, body) in &samples {
        // A frame whose first segment (after batch envelopes) is not MSH is refused whole.
        let mapped = if starts_with_msh(body) { plugin.messages(body) } else { Vec::new() };
        for (_, rows) in mapped.iter().flatten() {
            // Control ids are made unique per file by hl7_samples.
            if ids.insert(rows.control_id.clone()) {
                for (table, count) in [
                    ("message", 1),
                    ("patient", rows.patient.len()),
                    ("encounter", rows.encounter.len()),
                    ("observation", rows.observation.len()),
                    ("condition", rows.condition.len()),
                ] {
                    *expected.entry(table).or_default() += count;
                }
            }
        }
        expected_acks.push(if !mapped.is_empty() && mapped.iter().all(Result::is_ok) { "AA" } else { "not AA" });
    }
    assert_eq!(expected["message"], 44, "46 messages: one refused (PID-7), one twice in its batch");

    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    for ((file, body), wanted) in samples.iter().zip(&expected_acks) {
        let msa = mllp_exchange(&mut stream, body);
        assert_eq!(msa.starts_with("MSA|AA|"), *wanted == "AA", "{file}: {msa}");
    }
    // Everything again (resent after lost ACKs): acknowledged the same, stored nothing more.
    let mut again = std::net::TcpStream::connect(address).unwrap();
    again.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    for ((file, body), wanted) in samples.iter().zip(&expected_acks) {
        let msa = mllp_exchange(&mut again, body);
        assert_eq!(msa.starts_with("MSA|AA|"), *wanted == "AA", "resent {file}: {msa}");
    }
    // Last, one new message per log partition (a patient id that hashes there): within a
    // partition records are committed in order, so once all four are visible, everything
    // appended before them (a duplicate included, were there one) is in the warehouse.
    let mut markers = Vec::new();
    for partition in 0..4u32 {
        let patient = (0..)
            .map(|n| format!("marker-patient-{n}"))
            .find(|id| sluice_log::partition_for(Some(id), 4, 0) == partition)
            .unwrap();
        let id = format!("marker-{partition}");
        let message = format!("MSH|^~\\&|LAB|NORTH|SLUICE|DW|20240101120000||ORU^R01|{id}|P|2.5.1\rPID|1||{patient}\r");
        assert_eq!(mllp_exchange(&mut again, message.as_bytes()), format!("MSA|AA|{id}"));
        markers.push(id);
    }

    let client = sluice_catalog::TrinoClient::new(&trino, "analyst").with_schema("hive", &schema);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let query = |sql: &str| runtime.block_on(client.execute(sql));
    let count = |sql: &str| query(sql).ok().and_then(|rows| rows.first().and_then(|r| r[0].as_i64()));
    let deadline = Instant::now() + Duration::from_secs(180);
    while count("select count(*) from message where message_control_id like 'marker-%'") != Some(4) {
        assert!(Instant::now() < deadline, "the marker messages never became visible in Trino");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Each table's files are committed; Trino sees a table's new partitions once the catalog
    // has registered them, so each count is awaited, and may never pass what was sent.
    for (table, rows) in &expected {
        let wanted = (rows + if matches!(*table, "message" | "patient") { markers.len() } else { 0 }) as i64;
        loop {
            let visible = count(&format!("select count(*) from {table}")).unwrap_or(0);
            assert!(visible <= wanted, "{table}: {visible} rows, more than the {wanted} sent");
            if visible == wanted {
                break;
            }
            assert!(Instant::now() < deadline, "{table}: {visible} of {wanted} rows visible in Trino");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let duplicates =
        query("select count(*) from (select message_control_id from message group by 1 having count(*) > 1)").unwrap();
    assert_eq!(duplicates[0][0].as_i64(), Some(0), "no message is visible twice");

    // A few values as a reader of the messages knows them.
    let types: HashMap<String, String> = query("describe observation")
        .unwrap()
        .into_iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
        .collect();
    assert_eq!((types["effective_time"].as_str(), types["value_numeric"].as_str()), ("timestamp(6)", "double"));
    let glucose = query(
        "select value_numeric, value_unit, reference_range, interpretation, cast(effective_time as varchar) \
         from observation where code = '1554-5'",
    )
    .unwrap();
    // OBX-5 `^182`; no OBX-14, so OBR-7 20020215073000+0600 = 01:30 UTC.
    assert_eq!(
        glucose,
        vec![vec![
            serde_json::json!(182.0),
            "mg/dl".into(),
            "70_105".into(),
            "H".into(),
            "2002-02-15 01:30:00.000000".into()
        ]]
    );
    let patient = query(
        "select family_name, given_name, cast(birth_date as varchar), gender from patient where patient_id = '555-44-4444' \
         and source_message_id like '%CNTRL-3456'",
    )
    .unwrap();
    assert_eq!(
        patient,
        vec![vec![serde_json::json!("EVERYWOMAN"), "EVE".into(), "1962-03-20".into(), "female".into()]]
    );
    let merge =
        query("select mapped, patient_id from message where message_type = 'ADT' and trigger_event = 'A40'").unwrap();
    assert_eq!(merge, vec![vec![serde_json::json!(false), "12345".into()]], "a merge is kept in message only");
    drop(stream);
    drop(again);
    server.stop();
}
