//! Start-up: how long `sluice serve` (the embedded default, three bundled plugins) takes from
//! launch until it listens and until `/readyz` answers 200, with an empty compile cache (every
//! plugin compiled by Cranelift) and with a warm one (compiled code loaded from disk).
//!
//! Run: `tests/bench/startup.sh` (= `cargo bench -p sluice --bench startup`). Environment:
//! `BENCH_REPEATS` (runs per case, medians reported; default 7), `BENCH_OUT` (default
//! `target/bench/startup.json`). Without `--bench` (under `cargo test --all-targets`) it runs
//! each case once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

mod common;

use common::{ChildGuard, machine, write_report};

/// Starts `sluice serve` on `data` and returns (seconds until it listens, until it is ready).
fn start(data: &Path) -> (f64, f64) {
    let launched = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("SLUICE_CONFIG")
        .env_remove("SLUICE_PLUGINS_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let _guard = ChildGuard(child);
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let listening = launched.elapsed().as_secs_f64();
    let url = banner.trim().strip_prefix("sluice listening on ").expect("banner").to_string();
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let deadline = launched + Duration::from_secs(60);
    loop {
        if client.get(format!("{url}/readyz")).send().is_ok_and(|r| r.status().as_u16() == 200) {
            return (listening, launched.elapsed().as_secs_f64());
        }
        assert!(Instant::now() < deadline, "sluice was not ready within a minute");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let repeats: usize =
        std::env::var("BENCH_REPEATS").ok().and_then(|v| v.parse().ok()).unwrap_or(if full { 7 } else { 1 });
    let mut cases = Vec::new();
    println!("start-up of `sluice serve` (embedded, 3 bundled plugins), median of {repeats}");
    println!("{:<12} {:>14} {:>14}", "cache", "listening s", "ready s");
    for cached in [false, true] {
        let mut listening = Vec::new();
        let mut ready = Vec::new();
        for _ in 0..repeats {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            if cached {
                // A first start fills the compile cache; the measured one reads it.
                start(&data);
            }
            let (l, r) = start(&data);
            listening.push(l);
            ready.push(r);
        }
        let name = if cached { "warm" } else { "empty" };
        let (listening, ready) = (median(listening), median(ready));
        println!("{name:<12} {listening:>14.3} {ready:>14.3}");
        cases.push(json!({ "compile_cache": name, "listening_s": listening, "ready_s": ready, "repeats": repeats }));
    }
    write_report("startup", full, &json!({ "bench": "startup", "machine": machine(), "results": cases }));
}
