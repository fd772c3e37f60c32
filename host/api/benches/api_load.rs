//! Drives the API over loopback with HTTP Basic auth on, and prints requests/s, records/s and
//! latency percentiles for single-record and batched posts.
//!
//! Run: `cargo bench -p sluice-api --bench api_load` (or `tests/bench/api.sh`). Environment:
//! `BENCH_SECONDS` per scenario (default 10), `BENCH_CONNECTIONS` (default 32), `BENCH_BATCH`
//! records per batched request (default 100), `BENCH_OUT` (default `target/bench/api.json`).
//! Without `--bench` (as under `cargo test --all-targets`) it runs a one-second smoke pass.
//!
//! The server runs in this process on its own 2-thread runtime with the real plugins, auth store
//! and SQLite spool (fsync per group commit) in a temporary directory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sluice_api::{ApiLimits, ApiState, SourceTable};
use sluice_auth::{AuthPolicy, AuthStore};
use sluice_log::{SpoolConfig, SqliteSpool};
use sluice_runtime::{BundledPlugin, PluginEngine, PluginRegistry};

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

struct Scenario {
    name: &'static str,
    records_per_request: u64,
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
    let connections = env_number("BENCH_CONNECTIONS", if full { 32 } else { 4 });
    let batch = env_number("BENCH_BATCH", 100);
    let default_out = if full { "api.json" } else { "api-smoke.json" };
    let out_path = std::env::var("BENCH_OUT")
        .unwrap_or_else(|_| format!("{}/../../target/bench/{default_out}", env!("CARGO_MANIFEST_DIR")));

    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(Default::default(), None).unwrap();
    let bundled: Vec<BundledPlugin> = sluice_plugin_artifacts::BUNDLED
        .iter()
        .map(|b| BundledPlugin { file_name: b.file_name, wasm: b.wasm })
        .collect();
    let registry = PluginRegistry::open(&engine, None, &bundled).unwrap();
    let sources = SourceTable::new(registry, HashMap::new()).unwrap();
    let auth = Arc::new(AuthStore::open(&dir.path().join("auth.db"), AuthPolicy::default()).unwrap());
    auth.add_user("lab", "bench-password").unwrap();
    auth.grant("lab", "lab_results").unwrap();
    let spool = Arc::new(SqliteSpool::open(SpoolConfig::new(dir.path().join("spool.db"))).unwrap());
    let state = ApiState::new(sources, auth, spool, ApiLimits::default());

    let server_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = server_runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    server_runtime.spawn(sluice_api::serve(listener, state, std::future::pending()));

    let client_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let authorization = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("lab:bench-password"));
    let url = format!("http://{address}/v1/sources/lab_results/records");
    let scenarios =
        [Scenario { name: "single", records_per_request: 1 }, Scenario { name: "batched", records_per_request: batch }];
    println!(
        "api load: {connections} connections, {seconds} s per scenario, Basic auth, SQLite spool (fsync), loopback"
    );
    println!(
        "{:<9} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "scenario", "req/s", "records/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
    let mut results = Vec::new();
    for scenario in &scenarios {
        let body = if scenario.records_per_request == 1 {
            lab_result(1)
        } else {
            let items: Vec<String> = (0..scenario.records_per_request).map(lab_result).collect();
            format!("[{}]", items.join(","))
        };
        let (latencies, errors, elapsed) = client_runtime.block_on(async {
            let client = reqwest::Client::builder().pool_max_idle_per_host(connections as usize).build().unwrap();
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..connections {
                let (client, url, authorization, body) =
                    (client.clone(), url.clone(), authorization.clone(), body.clone());
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0u64;
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let response = client
                            .post(&url)
                            .header("authorization", &authorization)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        match response {
                            Ok(r) if r.status().as_u16() == 202 => {
                                let _ = r.bytes().await;
                                latencies.push(sent.elapsed().as_micros() as u64);
                            }
                            _ => errors += 1,
                        }
                    }
                    (latencies, errors)
                }));
            }
            let mut all = Vec::new();
            let mut errors = 0;
            for task in tasks {
                let (l, e) = task.await.unwrap();
                all.extend(l);
                errors += e;
            }
            (all, errors, started.elapsed())
        });
        let mut sorted = latencies;
        sorted.sort_unstable();
        let requests = sorted.len() as f64 / elapsed.as_secs_f64();
        let records = requests * scenario.records_per_request as f64;
        let (p50, p90, p99, max) =
            (percentile(&sorted, 0.5), percentile(&sorted, 0.9), percentile(&sorted, 0.99), percentile(&sorted, 1.0));
        println!(
            "{:<9} {requests:>10.0} {records:>12.0} {p50:>9.2} {p90:>9.2} {p99:>9.2} {max:>9.2} {errors:>7}",
            scenario.name
        );
        results.push(serde_json::json!({
            "scenario": scenario.name,
            "records_per_request": scenario.records_per_request,
            "connections": connections,
            "seconds": seconds,
            "requests_per_s": requests.round(),
            "records_per_s": records.round(),
            "latency_ms": { "p50": p50, "p90": p90, "p99": p99, "max": max },
            "errors": errors,
        }));
    }
    let report = serde_json::json!({
        "bench": "api_load",
        "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
        "results": results,
    });
    if let Some(parent) = std::path::Path::new(&out_path).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&out_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("written to {out_path}");
    server_runtime.shutdown_background();
}
