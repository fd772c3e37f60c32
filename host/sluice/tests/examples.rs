//! The example plugins in other languages, built as their authors build them and run by the host
//! (`sluice plugin check`: the API's split, then the stream's transform) on real data, every value
//! of every row compared with the source file read here independently.
//!
//! - `plugins/examples/mimic-python`: Python, MIMIC-III demo PATIENTS, ADMISSIONS and LABEVENTS
//!   (`tests/data/mimic-iii-demo`), three tables.
//! - `plugins/examples/synthea-js`: JavaScript, Synthea's observations.csv (`tests/data/synthea`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_plugin, repo};
use serde_json::{Value, json};

/// `sluice plugin check WASM --input FILE --format json`.
///
/// Each file goes through `split` and `transform` as one call, and an interpreted guest takes
/// seconds for the 20,000 rows of LABEVENTS (about 5,000 records/s in Python, slower on a loaded
/// machine; plugins/README.md, the limits per language), so the call deadline is raised the way an
/// operator would for such a source: this test is about values, not speed.
fn check(wasm: &Path, input: &Path, data: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE__PLUGINS__CALL_TIMEOUT", "5min")
        .arg("--data-dir")
        .arg(data)
        .args(["plugin", "check"])
        .arg(wasm)
        .arg("--input")
        .arg(input)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// How a column's text in the file becomes the value the warehouse must hold.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Float,
    Bool,
    Text,
    Timestamp,
    /// A UTC timestamp written with a trailing `Z`: stored as that instant's UTC wall clock.
    UtcTimestamp,
}

/// The value `text` (a CSV cell) must become, by the SDK's documented rules: empty, blank and
/// `Unknown` are NULL, text is trimmed, timestamps are wall clock as written.
fn expected(kind: Kind, text: &str) -> Value {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("unknown") {
        return Value::Null;
    }
    match kind {
        Kind::Int => json!(text.parse::<i64>().unwrap()),
        Kind::Float => json!(text.parse::<f64>().unwrap()),
        Kind::Bool => json!(text == "1"),
        Kind::Text => json!(text),
        Kind::Timestamp => json!(text.replace(' ', "T")),
        Kind::UtcTimestamp => json!(text.trim_end_matches('Z')),
    }
}

/// Runs `file` (under `tests/data/`) through the plugin and compares every value of `table`.
fn check_file(file: &str, table: &str, columns: &[(&str, Kind)], wasm: &Path, data: &Path) {
    let input = repo().join("tests/data").join(file);
    let out = check(wasm, &input, data);
    assert_eq!(out["rejected"], json!([]), "{file}");
    assert_eq!(out["refused_after_split"], json!([]), "{file}");
    let rows = out["tables"][table].as_array().unwrap();
    let mut reader = csv::Reader::from_path(&input).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), records.len(), "{file}: one row per record");
    assert_eq!(out["accepted"], records.len(), "{file}");
    for (row, record) in rows.iter().zip(&records) {
        assert_eq!(row.as_object().unwrap().len(), columns.len(), "{file}: the table's columns");
        for (source, kind) in columns {
            let at = header.iter().position(|h| h == source).unwrap_or_else(|| panic!("{file} has {source}"));
            let column = source.to_lowercase();
            assert_eq!(row[&column], expected(*kind, &record[at]), "{file} ROW_ID {}: {source}", &record[0]);
        }
    }
}

#[test]
fn the_python_mimic_plugin_stores_every_value_of_the_demo_files() {
    use Kind::*;
    let wasm = build_plugin("plugins/examples/mimic-python", "mimic.wasm");
    let data = tempfile::tempdir().unwrap();
    let patients = [
        ("ROW_ID", Int),
        ("SUBJECT_ID", Int),
        ("GENDER", Text),
        ("DOB", Timestamp),
        ("DOD", Timestamp),
        ("DOD_HOSP", Timestamp),
        ("DOD_SSN", Timestamp),
        ("EXPIRE_FLAG", Bool),
    ];
    check_file("mimic-iii-demo/PATIENTS.csv", "patients", &patients, &wasm, data.path());
    let admissions = [
        ("ROW_ID", Int),
        ("SUBJECT_ID", Int),
        ("HADM_ID", Int),
        ("ADMITTIME", Timestamp),
        ("DISCHTIME", Timestamp),
        ("DEATHTIME", Timestamp),
        ("ADMISSION_TYPE", Text),
        ("ADMISSION_LOCATION", Text),
        ("DISCHARGE_LOCATION", Text),
        ("INSURANCE", Text),
        ("LANGUAGE", Text),
        ("RELIGION", Text),
        ("MARITAL_STATUS", Text),
        ("ETHNICITY", Text),
        ("EDREGTIME", Timestamp),
        ("EDOUTTIME", Timestamp),
        ("DIAGNOSIS", Text),
        ("HOSPITAL_EXPIRE_FLAG", Bool),
        ("HAS_CHARTEVENTS_DATA", Bool),
    ];
    check_file("mimic-iii-demo/ADMISSIONS.csv", "admissions", &admissions, &wasm, data.path());
    let labevents = [
        ("ROW_ID", Int),
        ("SUBJECT_ID", Int),
        ("HADM_ID", Int),
        ("ITEMID", Int),
        ("CHARTTIME", Timestamp),
        ("VALUE", Text),
        ("VALUENUM", Float),
        ("VALUEUOM", Text),
        ("FLAG", Text),
    ];
    check_file("mimic-iii-demo/LABEVENTS.csv", "labevents", &labevents, &wasm, data.path());
}

#[test]
fn the_javascript_synthea_plugin_stores_every_value_of_the_observations_file() {
    use Kind::*;
    let wasm = build_plugin("plugins/examples/synthea-js", "synthea-observations.wasm");
    let data = tempfile::tempdir().unwrap();
    let observations = [
        ("DATE", UtcTimestamp),
        ("PATIENT", Text),
        ("ENCOUNTER", Text),
        ("CATEGORY", Text),
        ("CODE", Text),
        ("DESCRIPTION", Text),
        ("VALUE", Text),
        ("UNITS", Text),
        ("TYPE", Text),
    ];
    check_file("synthea/observations.csv", "observations", &observations, &wasm, data.path());
}
