//! Helpers shared by the `sluice` benchmarks.

use std::path::Path;
use std::process::Child;

use serde_json::{Value, json};

/// A child process killed when dropped.
#[allow(dead_code)] // not every bench starts a process
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The machine the figures come from: core count and CPU model.
pub fn machine() -> Value {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string())
    });
    json!({ "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()), "cpu_model": cpu_model })
}

/// Writes `report` to `BENCH_OUT`, or to `target/bench/<name>.json` (`<name>-smoke.json` for a
/// smoke pass), and says where.
pub fn write_report(name: &str, full: bool, report: &Value) {
    let file = if full { format!("{name}.json") } else { format!("{name}-smoke.json") };
    let out = std::env::var("BENCH_OUT")
        .unwrap_or_else(|_| format!("{}/../../target/bench/{file}", env!("CARGO_MANIFEST_DIR")));
    if let Some(dir) = Path::new(&out).parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out, serde_json::to_string_pretty(report).unwrap()).unwrap();
    println!("  figures written to {out}");
}
