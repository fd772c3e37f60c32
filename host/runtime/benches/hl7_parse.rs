//! The bundled `hl7v2` plugin on ORU^R01 lab results (15 OBX each), through Wasm and through the
//! same code compiled natively: `split` (each message read, checked and mapped, the API's
//! step) and `transform` (the rows, the stream's step). Prints messages/s, OBX rows/s and the
//! Wasm/native time ratio, median of runs alternating native and Wasm.
//!
//! Run: `cargo bench -p sluice-runtime --bench hl7_parse` (or `tests/bench/mllp.sh`).
//! Environment: `BENCH_MESSAGES` (default 20000), `BENCH_BATCH` (messages per call, default
//! 512), `BENCH_RUNS` (default 7), `BENCH_OUT` (default `target/bench/hl7_parse.json`).

use std::time::Instant;

use sluice_plugin_sdk::{OwnedBatch, Plugin as NativePlugin, Settings};
use sluice_runtime::{BatchBuilder, BundledPlugin, PluginEngine, PluginRegistry, Source};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const LABS: &[(&str, &str, &str)] = &[
    ("2345-7", "Glucose", "mg/dL"),
    ("2951-2", "Sodium", "mmol/L"),
    ("2823-3", "Potassium", "mmol/L"),
    ("2160-0", "Creatinine", "mg/dL"),
    ("718-7", "Hemoglobin", "g/dL"),
];

/// An ORU^R01 with 15 OBX, as lab systems send them (offsets on the times, LOINC codes).
fn oru(n: usize) -> String {
    let mut message = format!(
        "MSH|^~\\&|LAB|NORTH|SLUICE|DW|20241105101500+0100||ORU^R01^ORU_R01|M{n:08}|P|2.5.1\r\
         PID|1||MRN{:06}^^^HOSP^MR||DOE^JANE||19700101|F|||1 MAIN ST^^CITY^ST^12345\r\
         PV1|1|I|4E^12^1||||||||||||||||V{n:08}\r\
         ORC|RE|ORD{n}|FIL{n}\rOBR|1|ORD{n}|FIL{n}|24323-8^Metabolic panel^LN|||20241105093000+0100\r",
        n % 50_000
    );
    for i in 0..15 {
        let (code, name, unit) = LABS[i % LABS.len()];
        message.push_str(&format!(
            "OBX|{}|NM|{code}^{name}^LN||{}.{}|{unit}^^UCUM|70-105|N|||F|||20241105093000+0100\r",
            i + 1,
            60 + (n + i) % 90,
            i % 10
        ));
    }
    message
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let messages = env_number("BENCH_MESSAGES", if full { 20_000 } else { 500 });
    let batch_size = env_number("BENCH_BATCH", 512);
    let runs = env_number("BENCH_RUNS", if full { 7 } else { 1 });
    let out_path = std::env::var("BENCH_OUT").unwrap_or_else(|_| {
        format!(
            "{}/../../target/bench/{}",
            env!("CARGO_MANIFEST_DIR"),
            if full { "hl7_parse.json" } else { "hl7_parse-smoke.json" }
        )
    });
    let payloads: Vec<String> = (0..messages).map(oru).collect();
    let bytes: usize = payloads.iter().map(String::len).sum();
    let host_batches: Vec<_> = payloads
        .chunks(batch_size)
        .map(|chunk| {
            let mut builder = BatchBuilder::new("application/hl7-v2");
            chunk.iter().for_each(|p| {
                builder.push(p.as_bytes());
            });
            builder.finish()
        })
        .collect();
    let native_batches: Vec<OwnedBatch> = payloads
        .chunks(batch_size)
        .map(|chunk| {
            let mut batch = OwnedBatch::new("application/hl7-v2");
            chunk.iter().for_each(|p| {
                batch.push(p.as_bytes());
            });
            batch
        })
        .collect();

    let engine = PluginEngine::new(Default::default(), None).unwrap();
    let bundled: Vec<BundledPlugin> = sluice_plugin_artifacts::BUNDLED.to_vec();
    let registry = PluginRegistry::open(&engine, None, &bundled).unwrap();
    let source = Source::from_registry(&registry, "hl7v2", Vec::new()).unwrap();
    let native = hl7v2::Hl7v2::configure(&Settings::new(&hl7v2::Hl7v2::manifest().settings, &[]).unwrap()).unwrap();
    let observations =
        |tables: &[(String, usize)]| tables.iter().find(|(t, _)| t == "observation").map_or(0, |(_, n)| *n);

    println!(
        "hl7v2 plugin: {messages} ORU^R01 messages of 15 OBX ({} bytes each), {batch_size} per call, median of {runs} runs",
        bytes / messages
    );
    println!("{:<10} {:>16} {:>16} {:>14} {:>8}", "step", "native msg/s", "wasm msg/s", "wasm OBX/s", "ratio");
    let mut results = Vec::new();
    for step in ["split", "transform"] {
        let run_native = || -> usize {
            native_batches
                .iter()
                .map(|b| match step {
                    "split" => native.split(&b.as_batch()).origins.len(),
                    _ => {
                        let out = native.transform(&b.as_batch());
                        out.tables
                            .iter()
                            .map(|t| (t.table.clone(), t.len()))
                            .find(|(t, _)| t == "message")
                            .map_or(0, |(_, n)| n)
                    }
                })
                .sum()
        };
        let run_wasm = || -> (usize, usize) {
            host_batches
                .iter()
                .map(|b| match step {
                    "split" => (source.split(b).unwrap().output.origins.len(), 0),
                    _ => {
                        let out = source.transform(b).unwrap().output;
                        let tables: Vec<(String, usize)> =
                            out.tables.iter().map(|t| (t.table.clone(), t.len())).collect();
                        (tables.iter().find(|(t, _)| t == "message").map_or(0, |(_, n)| *n), observations(&tables))
                    }
                })
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        run_native();
        run_wasm();
        let (mut native_times, mut wasm_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let mut obx = 0;
        for _ in 0..runs {
            let start = Instant::now();
            assert_eq!(run_native(), messages, "every message accepted natively");
            let native_time = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let (count, rows) = run_wasm();
            let wasm_time = start.elapsed().as_secs_f64();
            assert_eq!(count, messages, "every message accepted in Wasm");
            obx = rows;
            native_times.push(native_time);
            wasm_times.push(wasm_time);
            ratios.push(wasm_time / native_time);
        }
        let (native_time, wasm_time, ratio) = (median(native_times), median(wasm_times), median(ratios));
        let native_rate = messages as f64 / native_time;
        let wasm_rate = messages as f64 / wasm_time;
        let obx_rate = obx as f64 / wasm_time;
        println!(
            "{step:<10} {native_rate:>16.0} {wasm_rate:>16.0} {:>14} {ratio:>7.2}x",
            if step == "transform" { format!("{obx_rate:.0}") } else { "-".into() }
        );
        results.push(serde_json::json!({
            "step": step,
            "messages": messages,
            "batch": batch_size,
            "runs": runs,
            "native_messages_per_s": native_rate.round(),
            "wasm_messages_per_s": wasm_rate.round(),
            "wasm_observations_per_s": if step == "transform" { obx_rate.round() } else { 0.0 },
            "wasm_to_native_time_ratio_median": (ratio * 1000.0).round() / 1000.0,
        }));
    }
    let report = serde_json::json!({ "bench": "hl7_parse", "results": results });
    if let Some(dir) = std::path::Path::new(&out_path).parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("written to {out_path}");
}
