//! Transforms 100k seed-shaped JSON records per bundled plugin through Wasm and through the same
//! plugin code compiled natively, and prints records/s and the Wasm/native time ratio.
//!
//! Run: `cargo bench -p sluice-runtime --bench plugin_transform` (or `tests/bench/plugin.sh`).
//! Environment: `BENCH_RECORDS` (default 100000), `BENCH_BATCH` (payloads per call, default
//! 4096), `BENCH_RUNS` (repetitions, native and Wasm alternating; medians are reported, and the ratio is
//! the median of the per-run ratios; default 11), `BENCH_OUT` (JSON file,
//! default `target/bench/plugin.json`).

use std::time::Instant;

use sluice_plugin_sdk::{OwnedBatch, Plugin as NativePlugin, Records, Settings};
use sluice_runtime::{BatchBuilder, BundledPlugin, PluginEngine, PluginRegistry, Source};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small deterministic generator (xorshift) so every run sees the same records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn guid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
    fn timestamp(&mut self) -> String {
        format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
            1940 + self.below(70),
            1 + self.below(12),
            1 + self.below(28),
            self.below(24),
            self.below(60),
            self.below(60),
            self.below(1000)
        )
    }
}

fn patient(rng: &mut Rng) -> String {
    format!(
        r#"{{"PatientID": "{}", "PatientGender": "{}", "PatientDateOfBirth": "{}", "PatientRace": "{}", "PatientMaritalStatus": "{}", "PatientLanguage": "{}", "PatientPopulationPercentageBelowPoverty": {}.{:02}}}"#,
        rng.guid(),
        rng.pick(&["Male", "Female"]),
        rng.timestamp(),
        rng.pick(&["White", "African American", "Asian", "Unknown"]),
        rng.pick(&["Married", "Single", "Divorced", "Separated", "Unknown"]),
        rng.pick(&["English", "Spanish", "Icelandic", "Unknown"]),
        rng.below(40),
        rng.below(100)
    )
}

fn admission(rng: &mut Rng) -> String {
    format!(
        r#"{{"PatientID": "{}", "AdmissionID": {}, "AdmissionStartDate": "{}", "AdmissionEndDate": "{}", "PrimaryDiagnosisCode": "{}", "PrimaryDiagnosisDescription": "{}"}}"#,
        rng.guid(),
        1 + rng.below(9),
        rng.timestamp(),
        rng.timestamp(),
        rng.pick(&["C69.6", "M01.X", "E11.9", "I10"]),
        rng.pick(&[
            "Malignant neoplasm of orbit",
            "Type 2 diabetes mellitus without complications",
            "Essential (primary) hypertension"
        ])
    )
}

fn lab_result(rng: &mut Rng) -> String {
    format!(
        r#"{{"PatientID": "{}", "AdmissionID": {}, "LabName": "{}", "LabValue": {}.{}, "LabUnits": "{}", "LabDateTime": "{}"}}"#,
        rng.guid(),
        1 + rng.below(9),
        rng.pick(&["CBC: HEMOGLOBIN", "METABOLIC: GLUCOSE", "URINALYSIS: PH", "CBC: WBC"]),
        rng.below(300),
        rng.below(10),
        rng.pick(&["gm/dl", "mg/dL", "k/cumm", "no unit"]),
        rng.timestamp()
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Times `native` and `wasm` alternately, `runs` times each, so that both see the same machine
/// load (this machine is shared); returns the median seconds of each and the median of the
/// per-run time ratios.
fn measure_pair(
    runs: usize,
    expected_rows: usize,
    mut native: impl FnMut() -> usize,
    mut wasm: impl FnMut() -> usize,
) -> (f64, f64, f64) {
    let time = |f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        let rows = f();
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(rows, expected_rows, "every record becomes a row");
        seconds
    };
    let (mut native_times, mut wasm_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let native_time = time(&mut native);
        let wasm_time = time(&mut wasm);
        ratios.push(wasm_time / native_time);
        native_times.push(native_time);
        wasm_times.push(wasm_time);
    }
    (median(native_times), median(wasm_times), median(ratios))
}

fn native<P: NativePlugin>() -> P {
    P::configure(&Settings::new(&P::manifest().settings, &[]).unwrap()).unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then run a small smoke
    // pass that only proves the benchmark still works.
    let full = std::env::args().any(|a| a == "--bench");
    let records = env_number("BENCH_RECORDS", if full { 100_000 } else { 2_000 });
    let batch_size = env_number("BENCH_BATCH", 4096);
    let runs = env_number("BENCH_RUNS", if full { 11 } else { 1 });
    let default_out = if full { "plugin.json" } else { "plugin-smoke.json" };
    let out_path = std::env::var("BENCH_OUT")
        .unwrap_or_else(|_| format!("{}/../../target/bench/{default_out}", env!("CARGO_MANIFEST_DIR")));

    let engine = PluginEngine::new(Default::default(), None).unwrap();
    let bundled: Vec<BundledPlugin> = sluice_plugin_artifacts::BUNDLED.to_vec();
    let registry = PluginRegistry::open(&engine, None, &bundled).unwrap();

    let mut results = Vec::new();
    println!("plugin transform: {records} records per plugin, {batch_size} payloads per call, median of {runs} runs");
    println!("{:<12} {:>14} {:>14} {:>8} {:>10}", "plugin", "native rec/s", "wasm rec/s", "ratio", "bytes/rec");
    type Generator = fn(&mut Rng) -> String;
    let plugins: [(&str, Generator); 3] =
        [("patients", patient), ("admissions", admission), ("lab_results", lab_result)];
    for (name, generate) in plugins {
        let mut rng = Rng(0x5EED_0000_0000_0001);
        let payloads: Vec<String> = (0..records).map(|_| generate(&mut rng)).collect();
        let bytes: usize = payloads.iter().map(String::len).sum();

        let host_batches: Vec<_> = payloads
            .chunks(batch_size)
            .map(|chunk| {
                let mut builder = BatchBuilder::new("application/json");
                for p in chunk {
                    builder.push(p.as_bytes());
                }
                builder.finish()
            })
            .collect();
        let native_batches: Vec<OwnedBatch> = payloads
            .chunks(batch_size)
            .map(|chunk| {
                let mut batch = OwnedBatch::new("application/json");
                for p in chunk {
                    batch.push(p.as_bytes());
                }
                batch
            })
            .collect();

        let transform_native: Box<dyn Fn(&OwnedBatch) -> usize> = match name {
            "patients" => {
                let p = native::<Records<patients::Patients>>();
                Box::new(move |b| p.transform(&b.as_batch()).tables[0].len())
            }
            "admissions" => {
                let p = native::<Records<admissions::Admissions>>();
                Box::new(move |b| p.transform(&b.as_batch()).tables[0].len())
            }
            _ => {
                let p = native::<Records<lab_results::LabResults>>();
                Box::new(move |b| p.transform(&b.as_batch()).tables[0].len())
            }
        };
        let source = Source::from_registry(&registry, name, Vec::new()).unwrap();
        // Warm up both (first instance growth, caches).
        transform_native(&native_batches[0]);
        source.transform(&host_batches[0]).unwrap();

        let (native_time, wasm_time, ratio) = measure_pair(
            runs,
            records,
            || native_batches.iter().map(&transform_native).sum(),
            || host_batches.iter().map(|b| source.transform(b).unwrap().output.tables[0].len()).sum(),
        );
        let native_rate = records as f64 / native_time;
        let wasm_rate = records as f64 / wasm_time;
        println!("{name:<12} {native_rate:>14.0} {wasm_rate:>14.0} {ratio:>7.2}x {:>10}", bytes / records);
        results.push(serde_json::json!({
            "plugin": name,
            "records": records,
            "batch": batch_size,
            "runs": runs,
            "native_records_per_s": native_rate.round(),
            "wasm_records_per_s": wasm_rate.round(),
            "wasm_to_native_time_ratio_median": (ratio * 1000.0).round() / 1000.0,
            "bytes_per_record": bytes / records,
        }));
    }
    let machine = serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpu_model": std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string())
        }),
    });
    let report = serde_json::json!({ "bench": "plugin_transform", "machine": machine, "results": results });
    if let Some(dir) = std::path::Path::new(&out_path).parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("written to {out_path}");
}
