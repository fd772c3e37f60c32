//! The same plugin logic in each guest language: compile time, instantiation (instantiate +
//! configure) time and memory per instance, and records/s through `split` and `transform`.
//!
//! Run: `tests/bench/languages.sh`, which writes the template plugin of `sluice plugin new` in
//! Rust, Python and JavaScript, builds each, and runs this with
//! `BENCH_PLUGINS=rust=PATH,python=PATH,javascript=PATH`.
//! Environment: `BENCH_RECORDS` (records per body, default 20,000), `BENCH_REPEATS` (median of,
//! default 5), `BENCH_OUT` (default `target/bench/languages.json`). Without `--bench` (under
//! `cargo test --all-targets`) it runs the bundled `patients` plugin once on a few records, so the
//! harness itself is tested.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use sluice_runtime::{Batch, Plugin, PluginEngine, PluginOrigin, SandboxConfig, Source};

mod common;

use common::{machine, write_report};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A body of the template plugin's shape (`plugins/templates/common/sample.csv`).
fn ward_body(records: usize) -> Vec<u8> {
    let mut body = String::from("PatientID,ObservedAt,HeartRate,Temperature,Note\n");
    for i in 0..records {
        body.push_str(&format!(
            "p-{:05},2026-11-30 {:02}:{:02}:00,{},{}.{},{}\n",
            i % 5000,
            i % 24,
            i % 60,
            50 + i % 70,
            35 + i % 5,
            i % 10,
            if i % 3 == 0 { "resting" } else { "" }
        ));
    }
    body.into_bytes()
}

/// A body of the bundled `patients` plugin's shape.
fn patients_body(records: usize) -> Vec<u8> {
    let mut body = String::from("PatientID\tPatientGender\tPatientDateOfBirth\n");
    for i in 0..records {
        body.push_str(&format!("p{i}\tFemale\t1970-01-{:02} 00:00:00.000\n", 1 + i % 28));
    }
    body.into_bytes()
}

struct Case {
    language: String,
    plugin: Option<std::path::PathBuf>,
    body: Vec<u8>,
    content_type: &'static str,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |key: &str, default: usize| std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let repeats = env("BENCH_REPEATS", if full { 5 } else { 1 });
    let records = env("BENCH_RECORDS", if full { 20_000 } else { 100 });
    let cases: Vec<Case> = match std::env::var("BENCH_PLUGINS") {
        Ok(list) => list
            .split(',')
            .map(|entry| {
                let (language, path) = entry.split_once('=').expect("BENCH_PLUGINS is language=path,...");
                Case {
                    language: language.into(),
                    plugin: Some(path.into()),
                    body: ward_body(records),
                    content_type: "text/csv",
                }
            })
            .collect(),
        Err(_) => vec![Case {
            language: "rust (bundled patients)".into(),
            plugin: None,
            body: patients_body(records),
            content_type: "text/tab-separated-values",
        }],
    };

    println!("one plugin per language, {records} records per body, median of {repeats}");
    println!(
        "{:<24} {:>10} {:>14} {:>12} {:>14} {:>14}",
        "language", "compile s", "instantiate ms", "memory MiB", "split rec/s", "transform rec/s"
    );
    let mut results = Vec::new();
    for case in cases {
        // A call may take longer than the default 10 s here (a whole body of an interpreted
        // plugin): the figure is the rate, not whether one call fits the default deadline.
        let config = SandboxConfig { call_timeout: std::time::Duration::from_secs(120), ..SandboxConfig::default() };
        let engine = PluginEngine::new(config, None).unwrap();
        let started = Instant::now();
        let plugin = Arc::new(match &case.plugin {
            Some(path) => Plugin::load_file(&engine, path).unwrap(),
            None => {
                let bundled = sluice_plugin_artifacts::BUNDLED.iter().find(|b| b.file_name == "patients.wasm").unwrap();
                Plugin::load(&engine, PluginOrigin::Bundled(bundled.file_name.into()), bundled.wasm).unwrap()
            }
        });
        let compile = started.elapsed().as_secs_f64();

        let mut instantiate = Vec::new();
        let mut memory = 0;
        for _ in 0..repeats {
            let before = engine.memory_in_use();
            let started = Instant::now();
            let source = Source::new(plugin.clone(), Vec::new()).unwrap();
            instantiate.push(started.elapsed().as_secs_f64() * 1e3);
            memory = engine.memory_in_use() - before;
            drop(source);
        }

        let source = Source::new(plugin.clone(), Vec::new()).unwrap();
        let body = Batch::single(case.content_type, &case.body);
        let (mut split, mut transform) = (Vec::new(), Vec::new());
        let mut accepted = 0;
        for _ in 0..repeats {
            let started = Instant::now();
            let records = source.split(&body).unwrap().output;
            split.push(records.records.len() as f64 / started.elapsed().as_secs_f64());
            accepted = records.records.len();
            let started = Instant::now();
            let out = source.transform(&records.records).unwrap().output;
            transform.push(accepted as f64 / started.elapsed().as_secs_f64());
            assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
        }
        assert_eq!(accepted, records, "every generated record is accepted");
        let (instantiate, split, transform) = (median(instantiate), median(split), median(transform));
        let mib = memory as f64 / (1 << 20) as f64;
        println!(
            "{:<24} {compile:>10.2} {instantiate:>14.1} {mib:>12.1} {split:>14.0} {transform:>14.0}",
            case.language
        );
        results.push(json!({
            "language": case.language, "plugin": case.plugin, "compile_s": compile, "instantiate_ms": instantiate,
            "memory_bytes": memory, "split_records_per_s": split, "transform_records_per_s": transform,
            "records": records, "repeats": repeats,
        }));
    }
    write_report("languages", full, &json!({ "bench": "languages", "machine": machine(), "results": results }));
}
