//! Drives the API over loopback with HTTP Basic auth on, and prints requests/s, records/s and
//! latency percentiles for single-record and batched posts, at fixed offered rates and at
//! saturation.
//!
//! At a fixed rate the load is open: request `i` is due at `start + i / rate` whether or not
//! earlier ones have answered, and its latency counts from when it was due, so a stalled server
//! cannot hide its queue (no coordinated omission). At saturation each connection sends its next
//! request as soon as the previous one answers.
//!
//! Run: `cargo bench -p sluice-api --bench api_load` (or `tests/bench/api.sh`). Environment:
//! `BENCH_SECONDS` per scenario (default 10), `BENCH_RATES` offered requests/s (default
//! `1000,5000,20000`), `BENCH_REPEATS` (runs per scenario, medians reported; default 3),
//! `BENCH_CONNECTIONS` (most requests in flight; default 64), `BENCH_BATCH` records per batched
//! request (default 100), `BENCH_SCENARIOS` (`single`, `batched` or both, the default:
//! `single,batched`), `BENCH_OUT` (default `target/bench/api.json`). Without `--bench` (as
//! under `cargo test --all-targets`) it runs a one-second smoke pass.
//!
//! The server runs in this process on its own 2-thread runtime with the real plugins and auth
//! store, appending to the SQLite spool (fsync per group commit) in a temporary directory, or to
//! Kafka when `SLUICE_TEST_KAFKA` names a broker (`BENCH_KAFKA=1 tests/bench/api.sh` starts one).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sluice_api::{ApiLimits, ApiState, SourceTable};
use sluice_auth::{AuthPolicy, AuthStore};
use sluice_kafka::{KafkaConfig, KafkaLog};
use sluice_log::{RecordLog, SpoolConfig, SqliteSpool};
use sluice_runtime::{BundledPlugin, PluginEngine, PluginRegistry};

/// The load generator allocates with jemalloc, as the `sluice` binary does (the server's code
/// runs in this process).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn lab_result(i: u64) -> String {
    format!(
        r#"{{"PatientID": "{:08X}-C9D0-4D09-8464-49BF0B982F0F", "AdmissionID": {}, "LabName": "CBC: HEMOGLOBIN", "LabValue": {}.{}, "LabUnits": "gm/dl", "LabDateTime": "1992-07-01 01:36:17.910"}}"#,
        i % 5000,
        1 + i % 7,
        10 + i % 9,
        i % 10
    )
}

/// Where and how the load is sent.
struct Target {
    url: String,
    authorization: String,
    connections: usize,
}

/// The figures of one run of one scenario.
struct Run {
    requests_per_s: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    errors: u64,
}

impl Target {
    /// Sends `body` for `duration`, at `rate` requests/s (open load) or as fast as answers come
    /// back (`None`), with at most `connections` requests in flight. Answers that arrive after
    /// `duration` still count: their requests were sent within it.
    async fn run(&self, body: &str, rate: Option<u64>, duration: Duration) -> Run {
        let client = reqwest::Client::builder().pool_max_idle_per_host(self.connections).build().unwrap();
        let in_flight = Arc::new(tokio::sync::Semaphore::new(self.connections));
        let mut tasks = tokio::task::JoinSet::new();
        let mut outcomes = Vec::new();
        let started = Instant::now();
        let deadline = started + duration;
        let mut sent = 0u64;
        while Instant::now() < deadline {
            // When the next request is due: on the rate's schedule, or at once.
            let scheduled = match rate {
                Some(rate) => {
                    let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
                    // A thread sleep (this future runs on the main thread, in `block_on`, not on
                    // a worker): tokio's timer has a 1 ms grain, so requests would leave up to
                    // 1 ms after they were due and that delay would count as the server's.
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    due
                }
                None => Instant::now(),
            };
            let permit = in_flight.clone().acquire_owned().await.unwrap();
            let request = client
                .post(&self.url)
                .header("authorization", &self.authorization)
                .header("content-type", "application/json")
                .body(body.to_string());
            tasks.spawn(async move {
                let accepted = match request.send().await {
                    Ok(response) => response.status().as_u16() == 202 && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                drop(permit);
                // Latency counts from when the request was due, not from when it left.
                (accepted, scheduled.elapsed().as_micros() as u64)
            });
            sent += 1;
            while let Some(done) = tasks.try_join_next() {
                outcomes.push(done.unwrap());
            }
        }
        outcomes.extend(tasks.join_all().await);
        let elapsed = started.elapsed();
        let errors = outcomes.iter().filter(|(accepted, _)| !accepted).count() as u64;
        let mut latencies: Vec<u64> =
            outcomes.iter().filter(|(accepted, _)| *accepted).map(|(_, latency)| *latency).collect();
        latencies.sort_unstable();
        Run {
            requests_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.5),
            p90: percentile(&latencies, 0.9),
            p99: percentile(&latencies, 0.99),
            max: percentile(&latencies, 1.0),
            errors,
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let seconds = env_number("BENCH_SECONDS", if full { 10 } else { 1 });
    let connections = env_number("BENCH_CONNECTIONS", if full { 64 } else { 4 });
    let batch = env_number("BENCH_BATCH", 100);
    let repeats = env_number("BENCH_REPEATS", if full { 3 } else { 1 }).max(1);
    let rates: Vec<u64> = match std::env::var("BENCH_RATES") {
        Ok(list) => list.split(',').filter_map(|r| r.trim().parse().ok()).collect(),
        Err(_) if full => vec![1_000, 5_000, 20_000],
        Err(_) => vec![200],
    };
    let kafka = if std::env::var_os("SLUICE_TEST_KAFKA").is_some() { "-kafka" } else { "" };
    let default_out = if full { format!("api{kafka}.json") } else { format!("api{kafka}-smoke.json") };
    let out_path = std::env::var("BENCH_OUT")
        .unwrap_or_else(|_| format!("{}/../../target/bench/{default_out}", env!("CARGO_MANIFEST_DIR")));

    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(Default::default(), None).unwrap();
    let bundled: Vec<BundledPlugin> = sluice_plugin_artifacts::BUNDLED.to_vec();
    let registry = PluginRegistry::open(&engine, None, &bundled).unwrap();
    let sources = SourceTable::new(registry, HashMap::new()).unwrap();
    let auth = Arc::new(AuthStore::open(&dir.path().join("auth.db"), AuthPolicy::default()).unwrap());
    auth.add_user("lab", "bench-password").unwrap();
    auth.grant("lab", "lab_results").unwrap();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .unwrap();
    let (log, log_name): (Arc<dyn RecordLog>, String) = match std::env::var("SLUICE_TEST_KAFKA") {
        Ok(brokers) => {
            let unique = format!("apibench{}", std::process::id());
            let mut config = KafkaConfig::new(&brokers);
            config.topic_prefix = format!("{unique}.");
            config.transactional_id = unique.clone();
            config.group_prefix = unique;
            (Arc::new(server_runtime.block_on(KafkaLog::connect(config)).unwrap()), format!("Kafka {brokers}"))
        }
        Err(_) => (
            Arc::new(SqliteSpool::open(SpoolConfig::new(dir.path().join("spool.db"))).unwrap()),
            "SQLite spool (fsync)".into(),
        ),
    };
    let state = ApiState::new(sources, auth, log, ApiLimits::default());

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let limits = sluice_api::ServerLimits::default();
    server_runtime.spawn(async move { sluice_api::serve(listener, None, state, limits, std::future::pending()).await });

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .unwrap();
    let authorization = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("lab:bench-password"));
    let url = format!("http://{address}/v1/sources/lab_results/records");
    let target = Target { url, authorization, connections: connections as usize };
    let bodies = [
        ("single", 1, lab_result(1)),
        ("batched", batch, {
            let items: Vec<String> = (0..batch).map(lab_result).collect();
            format!("[{}]", items.join(","))
        }),
    ];
    let scenarios = std::env::var("BENCH_SCENARIOS").unwrap_or_else(|_| "single,batched".into());
    let chosen: Vec<&str> = scenarios.split(',').map(str::trim).collect();
    let bodies: Vec<_> = bodies.into_iter().filter(|(name, _, _)| chosen.contains(name)).collect();
    assert!(!bodies.is_empty(), "BENCH_SCENARIOS names neither `single` nor `batched`: {scenarios}");
    let mut loads: Vec<Option<u64>> = rates.iter().copied().map(Some).collect();
    loads.push(None);
    println!(
        "api load: {seconds} s per scenario, median of {repeats}, at most {connections} connections, Basic auth, \
         {log_name}, loopback, client in the same process"
    );
    println!(
        "{:<9} {:>10} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "scenario", "offered/s", "req/s", "records/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
    // Warm up (connections, plugin instances, the credential cache) before anything is measured.
    client_runtime.block_on(target.run(&bodies[0].2, None, Duration::from_secs(1)));
    let mut results = Vec::new();
    for (name, records_per_request, body) in &bodies {
        for &rate in &loads {
            let runs: Vec<Run> = (0..repeats)
                .map(|_| client_runtime.block_on(target.run(body, rate, Duration::from_secs(seconds))))
                .collect();
            let pick = |f: fn(&Run) -> f64| {
                let mut values: Vec<f64> = runs.iter().map(f).collect();
                values.sort_by(f64::total_cmp);
                values[values.len() / 2]
            };
            let requests = pick(|r| r.requests_per_s);
            let records = requests * *records_per_request as f64;
            let (p50, p90, p99, max) = (pick(|r| r.p50), pick(|r| r.p90), pick(|r| r.p99), pick(|r| r.max));
            let errors: u64 = runs.iter().map(|r| r.errors).sum();
            let offered = rate.map_or("saturate".to_string(), |r| r.to_string());
            println!(
                "{name:<9} {offered:>10} {requests:>10.0} {records:>12.0} {p50:>9.2} {p90:>9.2} {p99:>9.2} {max:>9.2} {errors:>7}"
            );
            results.push(serde_json::json!({
                "scenario": name,
                "records_per_request": records_per_request,
                "offered_requests_per_s": rate,
                "connections": connections,
                "seconds": seconds,
                "repeats": repeats,
                "requests_per_s": requests.round(),
                "records_per_s": records.round(),
                "latency_ms": { "p50": p50, "p90": p90, "p99": p99, "max": max },
                "errors": errors,
            }));
        }
    }
    let report = serde_json::json!({
        "bench": "api_load",
        "log": log_name,
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "cpu_model": std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
                c.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string())
            }),
        },
        "results": results,
    });
    if let Some(parent) = std::path::Path::new(&out_path).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&out_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("written to {out_path}");
    server_runtime.shutdown_background();
}
