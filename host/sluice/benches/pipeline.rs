//! End to end: clients post lab results to `sluice serve` (a child process, release build under
//! `cargo bench`), and the clock stops when every record is committed Parquet in the warehouse.
//! Prints records/s end to end, the API's acceptance rate and latency percentiles, and the
//! server's peak RSS, and writes them to `target/bench/pipeline.json` (`BENCH_OUT`).
//!
//! Run: `tests/bench/pipeline.sh` (= `cargo bench -p sluice --bench pipeline`). With
//! `SLUICE_TEST_KAFKA` and `SLUICE_TEST_HDFS` set (tests/services/*.sh start them) it runs against
//! Kafka and HDFS, otherwise against the embedded spool and a local warehouse. Environment:
//! `BENCH_RECORDS` (default 500000), `BENCH_BATCH` records per request (default 1000),
//! `BENCH_CONNECTIONS` (default 8). Without `--bench` (under `cargo test --all-targets`) it runs
//! a small smoke pass.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn lab_results(first: u64, count: u64) -> String {
    let records: Vec<String> = (first..first + count)
        .map(|i| {
            format!(
                r#"{{"PatientID":"{:08X}-C9D0-4D09-8464-49BF0B982F0F","AdmissionID":{},"LabName":"CBC: HEMOGLOBIN","LabValue":{}.{},"LabUnits":"gm/dl","LabDateTime":"1992-07-01 01:36:17.910"}}"#,
                i % 5000,
                1 + i % 7,
                10 + i % 9,
                i % 10
            )
        })
        .collect();
    format!("[{}]", records.join(","))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Posts `body` until it is accepted (503s are retried) and returns how long the accepted
/// attempt took.
fn post_until_accepted(client: &reqwest::blocking::Client, url: &str, auth: &str, body: &str) -> Duration {
    loop {
        let sent = Instant::now();
        let response = client
            .post(format!("{url}/v1/sources/lab_results/records"))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let _ = response.bytes();
        if status == 202 {
            return sent.elapsed();
        }
        assert_eq!(status, 503, "unexpected status");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let total = env_number("BENCH_RECORDS", if full { 500_000 } else { 5_000 });
    let batch = env_number("BENCH_BATCH", 1000).max(1);
    let connections = env_number("BENCH_CONNECTIONS", if full { 8 } else { 2 });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let unique = format!(
        "bench{}x{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    let services = std::env::var("SLUICE_TEST_KAFKA").ok().zip(std::env::var("SLUICE_TEST_HDFS").ok());
    let (mode, config) = match &services {
        Some((kafka, hdfs)) => (
            format!("Kafka {kafka} + HDFS {hdfs}"),
            format!(
                "[log]\nkind = \"kafka\"\n[log.kafka]\nbrokers = \"{kafka}\"\ntopic_prefix = \"{unique}.\"\n\
                 transactional_id = \"{unique}\"\ngroup_prefix = \"{unique}\"\n[warehouse]\nurl = \"{hdfs}/bench/{unique}\"\n\
                 [stream]\nroll_ms = 1000\n"
            ),
        ),
        None => ("embedded spool + local warehouse".to_string(), "[stream]\nroll_ms = 1000\n".to_string()),
    };
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config).unwrap();
    let sluice = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("SLUICE_CONFIG", &config_path)
            .env_remove("SLUICE_PLUGINS_DIR");
        command
    };
    let mut add = sluice(&["users", "add", "bench", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"bench-password-1\n").unwrap();
    assert!(add.wait().unwrap().success());
    assert!(sluice(&["grants", "add", "bench", "lab_results"]).stdout(Stdio::null()).status().unwrap().success());

    let mut child = sluice(&["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    std::thread::spawn(move || for _ in stdout.lines() {});
    let url = banner.trim().strip_prefix("sluice listening on ").expect("banner").to_string();
    let pid = child.id();
    let _server = Server(child);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bench:bench-password-1"));

    // One request first, so that topics and the transaction coordinator exist before the clock.
    post_until_accepted(&reqwest::blocking::Client::new(), &url, &auth, &lab_results(u64::MAX - 1, 1));

    println!("pipeline bench: {total} lab results, {batch} per request, {connections} connections, {mode}");
    let next = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (next, latencies, url, auth) = (next.clone(), latencies.clone(), url.clone(), auth.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut mine = Vec::new();
                loop {
                    let first = next.fetch_add(batch, Ordering::SeqCst);
                    if first >= total {
                        break;
                    }
                    let body = lab_results(first, batch.min(total - first));
                    mine.push(post_until_accepted(&client, &url, &auth, &body).as_micros() as u64);
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let accepted_in = started.elapsed();

    let warehouse_url = match &services {
        Some((_, hdfs)) => format!("{hdfs}/bench/{unique}"),
        None => format!("file://{}", data.join("warehouse").display()),
    };
    let warehouse = sluice_warehouse::Warehouse::open(&warehouse_url, Default::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let expected = total + 1;
    let deadline = Instant::now() + Duration::from_secs(600);
    let rows = loop {
        let rows = runtime.block_on(warehouse.row_count("lab_results")).unwrap();
        if rows >= expected || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let landed_in = started.elapsed();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_unstable();
    println!(
        "  accepted by the API: {:.0} records/s ({:.0} requests/s), p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        total as f64 / accepted_in.as_secs_f64(),
        latencies.len() as f64 / accepted_in.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99)
    );
    println!(
        "  committed to Parquet: {rows} rows in {:.2} s = {:.0} records/s end to end",
        landed_in.as_secs_f64(),
        total as f64 / landed_in.as_secs_f64()
    );
    let rss = peak_rss_mib(pid);
    println!("  sluice peak RSS {rss:.0} MiB");
    assert_eq!(rows, expected, "every record landed once");
    let figures = serde_json::json!({
        "mode": mode,
        "records": total,
        "batch": batch,
        "connections": connections,
        "accepted_records_per_s": total as f64 / accepted_in.as_secs_f64(),
        "end_to_end_records_per_s": total as f64 / landed_in.as_secs_f64(),
        "latency_ms": { "p50": percentile(&latencies, 0.5), "p90": percentile(&latencies, 0.9), "p99": percentile(&latencies, 0.99) },
        "peak_rss_mib": rss,
        "machine": format!("{} cores", std::thread::available_parallelism().map_or(0, |n| n.get())),
    });
    let default_out = if full { "pipeline.json" } else { "pipeline-smoke.json" };
    let out = std::env::var("BENCH_OUT")
        .unwrap_or_else(|_| format!("{}/../../target/bench/{default_out}", env!("CARGO_MANIFEST_DIR")));
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out, serde_json::to_string_pretty(&figures).unwrap()).unwrap();
    println!("  figures written to {out}");
}
