//! End to end: `sluice simulate` posts generated patients, admissions and lab results to
//! `sluice serve` (both child processes, release builds under `cargo bench`) for a fixed time,
//! and the bench measures what the pipeline sustains:
//!
//! - records/s accepted by the API during the load, and records/s end to end (until every
//!   accepted record is committed Parquet in the warehouse, so including the wait for the last
//!   segments' roll interval after the load stops);
//! - records/s committed while the load runs (the least-squares slope of sluice's
//!   `sluice_rows_committed_total`, sampled four times a second, after the first 10 s) beside
//!   the records/s the API accepted in the same window, and the stream's lag behind the API
//!   when the load stops: whether the stream keeps up;
//! - time from acceptance to being visible in Trino: once a second a probe lab result with a
//!   unique patient id is posted, and Trino is queried every two seconds until each probe shows
//!   up (p50, p99; known to within about two seconds);
//! - sluice's peak RSS, and the CPU time of sluice, the simulator, Kafka, HDFS and Trino during
//!   the load (from /proc, as a share of the machine's cores).
//!
//! Each figure is the median of `BENCH_REPEATS` runs (default 3), each with its own topics,
//! warehouse directory and Trino schema. Prints a table and writes `target/bench/pipeline.json`
//! (`pipeline-embedded.json` without the services; `BENCH_OUT` to choose).
//!
//! Run: `tests/bench/pipeline.sh` (= `cargo bench -p sluice --bench pipeline` with Kafka, HDFS and
//! Trino started by tests/services/*.sh). With `SLUICE_TEST_KAFKA` and `SLUICE_TEST_HDFS` set it
//! runs against them, otherwise against the embedded spool and a local warehouse;
//! `SLUICE_TEST_TRINO` adds the catalog and the visibility probes. Environment: `BENCH_SECONDS`
//! of load (default 60), `BENCH_BATCH` records per request (default 1000), `BENCH_CONNECTIONS`
//! (default 8), `BENCH_ROLL_MS` (the stream's roll interval; default 5000), `BENCH_REPEATS`;
//! `BENCH_COUNT` sends a burst of that many records instead of `BENCH_SECONDS` of load (then
//! "end to end" is the burst's figure: from the first request to the last row committed, checked
//! against both the Parquet footers and `sluice_rows_committed_total`; `tests/bench/burst.sh`).
//! Without `--bench` (under `cargo test --all-targets`) it runs a short smoke pass.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use base64::Engine as _;
use common::{ChildGuard, machine, write_report};
use serde_json::{Value, json};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the bench was told.
struct Settings {
    seconds: u64,
    /// A burst of this many records instead of `seconds` of load.
    count: Option<u64>,
    batch: u64,
    connections: u64,
    roll_ms: u64,
    kafka_hdfs: Option<(String, String)>,
    trino: Option<String>,
}

/// CPU seconds (user + system) a process has used so far, 0 when it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    cpu_seconds_if_running(pid).unwrap_or(0.0)
}

/// CPU seconds (user + system) of a running process; `None` once it has exited.
fn cpu_seconds_if_running(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    if stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) {
        return None;
    }
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some((ticks(11) + ticks(12)) / 100.0)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The service processes started by tests/services/*.sh, by name.
fn service_pids() -> BTreeMap<&'static str, Vec<u32>> {
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache"));
    let run = std::env::var("SLUICE_SERVICES_DIR").map(PathBuf::from).unwrap_or_else(|_| cache.join("sluice/run"));
    let read = |path: PathBuf| std::fs::read_to_string(path).ok().and_then(|p| p.trim().parse::<u32>().ok());
    let port = |name: &str, default: u16| std::env::var(name).ok().unwrap_or_else(|| default.to_string());
    let kafka = run.join(format!("kafka-{}", port("SLUICE_KAFKA_PORT", 19092)));
    let hdfs = run.join(format!("hdfs-{}", port("SLUICE_HDFS_PORT", 19000)));
    let trino = run.join(format!("trino-{}", port("SLUICE_TRINO_PORT", 19080)));
    let mut pids = BTreeMap::new();
    pids.insert("kafka", read(kafka.join("kafka.pid")).into_iter().collect());
    pids.insert(
        "hdfs",
        [read(hdfs.join("namenode.pid")), read(hdfs.join("datanode.pid"))].into_iter().flatten().collect(),
    );
    pids.insert("trino", read(trino.join("trino.pid")).into_iter().collect());
    pids
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize])
}

/// One probe: a lab result only the bench sends, and when it was accepted.
struct Probe {
    patient: String,
    accepted: Instant,
    visible: Option<Instant>,
}

fn probe_body(patient: &str) -> String {
    format!(
        r#"{{"PatientID":"{patient}","AdmissionID":1,"LabName":"PROBE","LabValue":1.0,"LabUnits":"none","LabDateTime":"2020-01-01 00:00:00"}}"#
    )
}

/// Posts one body until it is accepted (503s are retried).
fn post_until_accepted(client: &reqwest::blocking::Client, url: &str, source: &str, auth: &str, body: &str) {
    loop {
        let response = client
            .post(format!("{url}/v1/sources/{source}/records"))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let _ = response.bytes();
        if status == 202 {
            return;
        }
        assert_eq!(status, 503, "unexpected status");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One run: a fresh deployment, the load, the drain. Returns its figures.
fn run_once(settings: &Settings, run: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let unique = format!(
        "bench{}x{}x{run}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    let mut config = format!("[stream]\nroll_interval = \"{}ms\"\n", settings.roll_ms);
    let warehouse_url = match &settings.kafka_hdfs {
        Some((kafka, hdfs)) => {
            config.push_str(&format!(
                "[log]\nkind = \"kafka\"\n[kafka]\nbrokers = \"{kafka}\"\ntopic_prefix = \"{unique}.\"\n\
                 transactional_id = \"{unique}\"\ngroup_prefix = \"{unique}\"\n[warehouse]\nurl = \"{hdfs}/bench/{unique}\"\n"
            ));
            format!("{hdfs}/bench/{unique}")
        }
        None => format!("file://{}", data.join("warehouse").display()),
    };
    if let Some(trino) = &settings.trino {
        config.push_str(&format!("[catalog]\ntrino_url = \"{trino}\"\nschema = \"{unique}\"\nrescan = \"2s\"\n"));
    }
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config).unwrap();
    let sluice = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("SLUICE_CONFIG", &config_path)
            .env("SLUICE_PASSWORD", "bench-password-1")
            .env_remove("SLUICE_PLUGINS_DIR")
            .env_remove("RUST_LOG");
        command
    };
    let password = "bench-password-1";
    let mut add = sluice(&["users", "add", "bench", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());
    let sources = ["patients", "admissions", "lab_results"];
    for source in sources {
        assert!(sluice(&["grants", "add", "bench", source]).stdout(Stdio::null()).status().unwrap().success());
    }

    let mut child = sluice(&["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    std::thread::spawn(move || for _ in stdout.lines() {});
    let url = banner.trim().strip_prefix("sluice listening on ").expect("banner").to_string();
    let pid = child.id();
    let _server = ChildGuard(child);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("bench:{password}")));

    // One probe first, so that topics, the transaction coordinator and the Trino tables exist
    // before the clock starts.
    let client = reqwest::blocking::Client::new();
    let warm_up = format!("PROBE-{unique}-WARM");
    post_until_accepted(&client, &url, "lab_results", &auth, &probe_body(&warm_up));
    let trino =
        settings.trino.as_ref().map(|t| sluice_catalog::TrinoClient::new(t, "bench").with_schema("hive", &unique));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let visible_probes = |like: &str| -> Vec<String> {
        let Some(trino) = &trino else { return Vec::new() };
        let sql = format!("select patientid from lab_results where patientid like '{like}%'");
        runtime
            .block_on(trino.execute(&sql))
            .map(|rows| rows.iter().filter_map(|r| r[0].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    if trino.is_some() {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !visible_probes(&warm_up).contains(&warm_up) {
            assert!(Instant::now() < deadline, "the warm-up probe never became visible in Trino");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let services = service_pids();
    let cpu_of = |pids: &[u32]| pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();
    let cpu_before: BTreeMap<&str, f64> = services.iter().map(|(name, pids)| (*name, cpu_of(pids))).collect();
    let sluice_cpu_before = cpu_seconds(pid);

    let started = Instant::now();
    let (amount_flag, amount) = match settings.count {
        Some(count) => ("--count", count.to_string()),
        None => ("--duration", format!("{}s", settings.seconds)),
    };
    let simulator = sluice(&[
        "simulate",
        "--url",
        &url,
        "--user",
        "bench",
        amount_flag,
        &amount,
        "--connections",
        &settings.connections.to_string(),
        "--batch",
        &settings.batch.to_string(),
        "--seed",
        "1",
        "--json",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let simulator_pid = simulator.id();

    // Probes: one a second while the load runs.
    let probes = Arc::new(Mutex::new(Vec::<Probe>::new()));
    let loading = Arc::new(AtomicBool::new(true));
    let prober = {
        let (probes, loading, url, auth, unique) =
            (probes.clone(), loading.clone(), url.clone(), auth.clone(), unique.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut n = 0;
            while loading.load(Ordering::SeqCst) {
                let patient = format!("PROBE-{unique}-{n:05}");
                post_until_accepted(&client, &url, "lab_results", &auth, &probe_body(&patient));
                probes.lock().unwrap().push(Probe { patient, accepted: Instant::now(), visible: None });
                n += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    // Trino is asked, one query at a time, which probes it sees.
    let look = || {
        let seen = visible_probes(&format!("PROBE-{unique}-0"));
        let now = Instant::now();
        let mut probes = probes.lock().unwrap();
        for probe in probes.iter_mut().filter(|p| p.visible.is_none() && seen.contains(&p.patient)) {
            probe.visible = Some(now);
        }
        probes.iter().all(|p| p.visible.is_some())
    };
    let mut simulator = ChildGuard(simulator);
    let simulator_cpu = Arc::new(Mutex::new(0.0));
    let watcher = {
        let simulator_cpu = simulator_cpu.clone();
        std::thread::spawn(move || {
            // The simulator's CPU, sampled until it exits (a finished process's /proc is gone).
            while let Some(now) = cpu_seconds_if_running(simulator_pid) {
                *simulator_cpu.lock().unwrap() = now;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // sluice's own counters, four times a second while the load runs: how fast records are
    // committed while they keep coming (the end-to-end figure also waits out the last roll).
    let sampler = {
        let (loading, metrics_url) = (loading.clone(), format!("{url}/metrics"));
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut samples = Vec::new();
            while loading.load(Ordering::SeqCst) {
                if let Ok(text) = client.get(&metrics_url).send().and_then(|r| r.text()) {
                    let at = started.elapsed().as_secs_f64();
                    samples.push(Sample {
                        at,
                        accepted: counter_total(&text, "sluice_records_accepted_total"),
                        committed: counter_total(&text, "sluice_rows_committed_total"),
                    });
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        })
    };
    // Trino every two seconds, so that its share of the CPU stays small (each query lists and
    // opens the table's files); visibility is therefore known to within about two seconds. The
    // simulator's exit is noticed within 20 ms: the load's length (and the drain's start) were
    // rounded up to the next two seconds before, which undercounted records/s by up to 6% in a
    // 30 s run and capped a 12 s burst at exactly its count / 12 s.
    let mut next_look = Instant::now();
    while simulator.0.try_wait().unwrap().is_none() {
        if trino.is_some() && Instant::now() >= next_look {
            look();
            next_look = Instant::now() + Duration::from_secs(2);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let sluice_cpu = cpu_seconds(pid) - sluice_cpu_before;
    let cpu_after: BTreeMap<&str, f64> = services.iter().map(|(name, pids)| (*name, cpu_of(pids))).collect();
    loading.store(false, Ordering::SeqCst);
    prober.join().unwrap();
    let samples = sampler.join().unwrap();
    let settled = samples.iter().filter(|s| s.at >= settle_seconds(settings.seconds) && s.at <= load_seconds);
    let (settled_accepted, settled_committed): (Vec<_>, Vec<_>) =
        settled.map(|s| ((s.at, s.accepted), (s.at, s.committed))).unzip();
    let accepted_settled = slope(settled_accepted);
    let committed_during_load = slope(settled_committed);
    let lag_at_load_end = samples.last().map(|s| s.accepted - s.committed);
    watcher.join().unwrap();
    let mut output = String::new();
    std::io::Read::read_to_string(simulator.0.stdout.as_mut().unwrap(), &mut output).unwrap();
    let report: Value = serde_json::from_str(&output).unwrap_or_else(|e| panic!("simulator report {output:?}: {e}"));
    let accepted = report["accepted"].as_u64().unwrap();

    // The drain: until every accepted record (and every probe) is committed Parquet.
    let probe_count = probes.lock().unwrap().len() as u64;
    let expected = accepted + probe_count + 1;
    let warehouse = sluice_warehouse::Warehouse::open(&warehouse_url, Default::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let rows = loop {
        let rows: u64 = sources.iter().map(|t| runtime.block_on(warehouse.row_count(t)).unwrap_or(0)).sum();
        if rows >= expected || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let landed_in = started.elapsed().as_secs_f64();
    assert_eq!(rows, expected, "every accepted record landed once");
    // sluice's own count agrees with the Parquet footers.
    let metrics = client.get(format!("{url}/metrics")).send().and_then(|r| r.text()).unwrap_or_default();
    let committed_counter = counter_total(&metrics, "sluice_rows_committed_total");
    assert_eq!(committed_counter as u64, expected, "sluice_rows_committed_total matches the rows in the files");
    if trino.is_some() {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !look() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let rss = peak_rss_mib(pid);

    let mut visibility: Vec<f64> =
        probes.lock().unwrap().iter().filter_map(|p| p.visible.map(|v| (v - p.accepted).as_secs_f64())).collect();
    visibility.sort_by(f64::total_cmp);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let share = |seconds: f64| seconds / (load_seconds * cores);
    let mut cpu = serde_json::Map::new();
    cpu.insert("sluice".into(), json!(share(sluice_cpu)));
    cpu.insert("simulator".into(), json!(share(*simulator_cpu.lock().unwrap())));
    for (name, before) in &cpu_before {
        cpu.insert((*name).into(), json!(share(cpu_after[name] - before)));
    }
    json!({
        "accepted_records": accepted,
        "load_seconds": load_seconds,
        "accepted_records_per_s": accepted as f64 / load_seconds,
        "end_to_end_records_per_s": accepted as f64 / landed_in,
        "committed_during_load_records_per_s": committed_during_load,
        "accepted_after_settling_records_per_s": accepted_settled,
        "lag_at_load_end_records": lag_at_load_end,
        "drain_seconds": landed_in - load_seconds,
        "api_latency_ms": report["latency_ms"],
        "visible_in_trino_s": { "p50": percentile(&visibility, 0.5), "p99": percentile(&visibility, 0.99), "probes": probe_count, "seen": visibility.len() },
        "peak_rss_mib": rss,
        "cpu_share_of_machine": cpu,
    })
}

/// sluice's counters at one moment of the load.
struct Sample {
    /// Seconds since the load started.
    at: f64,
    accepted: f64,
    committed: f64,
}

/// The sum of a Prometheus counter's series in `/metrics` text.
fn counter_total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Seconds into the load after which the pipeline is taken to be settled (topics warm, the
/// first segments committed): 10 s of a full run, a sixth of a short one.
fn settle_seconds(load_seconds: u64) -> f64 {
    (load_seconds as f64 / 6.0).min(10.0)
}

/// The least-squares slope of `points` (per second), `None` with fewer than two.
fn slope(points: Vec<(f64, f64)>) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (mean_x, mean_y) = points.iter().fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    let (covariance, variance) =
        points.iter().fold((0.0, 0.0), |(c, v), p| (c + (p.0 - mean_x) * (p.1 - mean_y), v + (p.0 - mean_x).powi(2)));
    (variance > 0.0).then(|| covariance / variance)
}

fn median_of(runs: &[Value], pointer: &str) -> Value {
    let mut values: Vec<f64> = runs.iter().filter_map(|r| r.pointer(pointer).and_then(Value::as_f64)).collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).map_or(Value::Null, |v| json!(v))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let settings = Settings {
        seconds: env_number("BENCH_SECONDS", if full { 60 } else { 2 }),
        count: std::env::var("BENCH_COUNT").ok().and_then(|v| v.parse().ok()),
        batch: env_number("BENCH_BATCH", if full { 1000 } else { 100 }).max(1),
        connections: env_number("BENCH_CONNECTIONS", if full { 8 } else { 2 }),
        roll_ms: env_number("BENCH_ROLL_MS", if full { 5000 } else { 500 }),
        kafka_hdfs: std::env::var("SLUICE_TEST_KAFKA").ok().zip(std::env::var("SLUICE_TEST_HDFS").ok()),
        trino: std::env::var("SLUICE_TEST_TRINO").ok(),
    };
    let repeats = env_number("BENCH_REPEATS", if full { 3 } else { 1 }).max(1) as usize;
    let mode = match (&settings.kafka_hdfs, &settings.trino) {
        (Some((kafka, hdfs)), Some(trino)) => format!("Kafka {kafka} + HDFS {hdfs} + Trino {trino}"),
        (Some((kafka, hdfs)), None) => format!("Kafka {kafka} + HDFS {hdfs}"),
        (None, _) => "embedded spool + local warehouse".to_string(),
    };
    let load = match settings.count {
        Some(count) => format!("a burst of {count} records"),
        None => format!("simulator for {} s", settings.seconds),
    };
    println!(
        "pipeline bench: {load}, {} records per request, {} connections, roll every {} ms, {mode}, median of {repeats}",
        settings.batch, settings.connections, settings.roll_ms
    );
    let runs: Vec<Value> = (0..repeats)
        .map(|run| {
            let figures = run_once(&settings, run);
            println!("  run {}: {figures}", run + 1);
            figures
        })
        .collect();
    let median = |pointer: &str| median_of(&runs, pointer);
    let cpu: serde_json::Map<String, Value> = runs[0]["cpu_share_of_machine"]
        .as_object()
        .unwrap()
        .keys()
        .map(|name| (name.clone(), median(&format!("/cpu_share_of_machine/{name}"))))
        .collect();
    let summary = json!({
        "accepted_records_per_s": median("/accepted_records_per_s"),
        "end_to_end_records_per_s": median("/end_to_end_records_per_s"),
        "committed_during_load_records_per_s": median("/committed_during_load_records_per_s"),
        "accepted_after_settling_records_per_s": median("/accepted_after_settling_records_per_s"),
        "lag_at_load_end_records": median("/lag_at_load_end_records"),
        "api_latency_ms": { "p50": median("/api_latency_ms/p50"), "p99": median("/api_latency_ms/p99") },
        "visible_in_trino_s": { "p50": median("/visible_in_trino_s/p50"), "p99": median("/visible_in_trino_s/p99") },
        "peak_rss_mib": median("/peak_rss_mib"),
        "cpu_share_of_machine": cpu,
    });
    let show = |v: &Value| v.as_f64().map_or("-".to_string(), |f| format!("{f:.2}"));
    println!("  accepted by the API        {} records/s", show(&summary["accepted_records_per_s"]));
    println!("  committed Parquet (e2e)    {} records/s", show(&summary["end_to_end_records_per_s"]));
    println!(
        "  committed during the load  {} records/s (accepted meanwhile {} records/s; stream lag at its end: {} records)",
        show(&summary["committed_during_load_records_per_s"]),
        show(&summary["accepted_after_settling_records_per_s"]),
        show(&summary["lag_at_load_end_records"])
    );
    println!(
        "  API latency per request    p50 {} ms, p99 {} ms",
        show(&summary["api_latency_ms"]["p50"]),
        show(&summary["api_latency_ms"]["p99"])
    );
    println!(
        "  accepted -> visible (Trino) p50 {} s, p99 {} s",
        show(&summary["visible_in_trino_s"]["p50"]),
        show(&summary["visible_in_trino_s"]["p99"])
    );
    println!("  sluice peak RSS            {} MiB", show(&summary["peak_rss_mib"]));
    let split: Vec<String> =
        cpu.iter().map(|(name, share)| format!("{name} {:.0}%", share.as_f64().unwrap_or(0.0) * 100.0)).collect();
    println!("  CPU (share of the machine) {}", split.join(", "));
    let report = json!({
        "bench": "pipeline",
        "mode": mode,
        "seconds": settings.seconds,
        "burst_records": settings.count,
        "batch": settings.batch,
        "connections": settings.connections,
        "roll_ms": settings.roll_ms,
        "repeats": repeats,
        "machine": machine(),
        "median": summary,
        "runs": runs,
    });
    // The embedded run keeps its own file, so that it does not overwrite the services' figures.
    let name = if settings.kafka_hdfs.is_some() { "pipeline" } else { "pipeline-embedded" };
    write_report(name, full, &report);
}
