//! `sluice plugin list`, `check` and `wit`, run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs sluice with a fresh, empty data directory.
fn sluice(args: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    sluice_on(data.path(), args)
}

/// Runs sluice on the data directory `data`.
fn sluice_on(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(repo())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("SLUICE_PLUGINS_DIR")
        .output()
        .expect("sluice runs")
}

/// A data directory whose plugin directory holds `wasm` as `name`.
fn data_with_plugin(wasm: &str, name: &str) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let plugins = data.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(wasm, plugins.join(name)).unwrap();
    data
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("one JSON document")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn list_shows_the_bundled_plugins_with_digests_and_tables() {
    let list = stdout_json(&sluice(&["plugin", "list", "--format", "json"]));
    let plugins = list.as_array().unwrap();
    let names: Vec<&str> = plugins.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["admissions", "hl7v2", "lab_results", "patients"]);
    for plugin in plugins {
        assert_eq!(plugin["digest"].as_str().unwrap().len(), 64);
        if plugin["name"] == "hl7v2" {
            let tables: Vec<&str> =
                plugin["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
            assert_eq!(tables, ["message", "patient", "encounter", "observation", "condition"]);
            assert_eq!(plugin["content_types"][0], "application/hl7-v2");
        } else {
            assert_eq!(plugin["tables"][0]["name"], plugin["name"]);
            assert!(plugin["content_types"].as_array().unwrap().contains(&Value::from("text/csv")));
        }
    }
}

#[test]
fn check_prints_typed_rows_and_rejections_as_json() {
    let out = stdout_json(&sluice(&[
        "plugin",
        "check",
        "admissions",
        "--input",
        "tests/data/admissions.json",
        "--format",
        "json",
    ]));
    assert_eq!(out["plugin"]["name"], "admissions");
    assert_eq!(out["plugin"]["version"], "0.1.0");
    let rows = out["tables"]["admissions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let columns: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(
        columns,
        vec![
            "patientid",
            "admissionid",
            "admissionstartdate",
            "admissionenddate",
            "primarydiagnosiscode",
            "primarydiagnosisdescription"
        ]
    );
    assert_eq!(rows[0]["admissionid"], 1);
    assert_eq!(rows[0]["admissionstartdate"], "1974-07-26T15:05:30.333");
    assert_eq!(rows[1]["admissionid"], 2);
    assert_eq!(rows[1]["admissionstartdate"], "2012-06-26T00:00:00");
    assert_eq!(
        out["rejected"],
        serde_json::json!([{"index": 2, "reason": "AdmissionID is not an integer", "field": "AdmissionID"}])
    );
}

#[test]
fn unknown_becomes_null_and_settings_apply() {
    let out = stdout_json(&sluice(&[
        "plugin",
        "check",
        "patients",
        "--input",
        "tests/data/patients.tsv",
        "--format",
        "json",
    ]));
    let rows = out["tables"]["patients"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["patientrace"], Value::Null);
    assert_eq!(rows[0]["patientpopulationpercentagebelowpoverty"], 18.08);
    let filtered = stdout_json(&sluice(&[
        "plugin",
        "check",
        "patients",
        "--input",
        "tests/data/patients.tsv",
        "--set",
        "drop-unknown=true",
        "--format",
        "json",
    ]));
    assert_eq!(filtered["tables"]["patients"].as_array().unwrap().len(), 2);
    assert_eq!(filtered["rejected"][0]["field"], "PatientRace");
}

/// Standard input under an explicit content type, given by another of its names (JSON Lines for
/// NDJSON), read as the plugin reads it through the API.
#[test]
fn check_reads_standard_input_with_an_explicit_content_type() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--data-dir", "/nonexistent/sluice", "plugin", "check", "lab_results", "--input", "-"])
        .args(["--content-type", "application/jsonl", "--format", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"{\"PatientID\": \"p\", \"LabValue\": \"1.5\"}\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let out = stdout_json(&output);
    assert_eq!(out["tables"]["lab_results"][0]["labvalue"], 1.5);
}

#[test]
fn unusable_plugins_and_files_fail_with_a_clear_message() {
    let missing = sluice(&["plugin", "check", "patients", "--input", "tests/data/nope.tsv"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).starts_with("error: cannot read input file tests/data/nope.tsv"), "{}", stderr(&missing));

    let unknown = sluice(&["plugin", "check", "radiology"]);
    assert!(!unknown.status.success());
    assert_eq!(
        stderr(&unknown).trim(),
        "error: no plugin named `radiology` is loaded (loaded: admissions, hl7v2, lab_results, patients)"
    );

    let bad_setting = sluice(&["plugin", "check", "patients", "--set", "drop-unknown=maybe"]);
    assert!(!bad_setting.status.success());
    assert_eq!(
        stderr(&bad_setting).trim(),
        "error: plugin patients@0.1.0 rejected its settings: setting `drop-unknown` must be true or false, not `maybe`"
    );

    let content_type = sluice(&["plugin", "check", "patients", "--input", "tests/data/README.md"]);
    assert!(!content_type.status.success());
    assert!(stderr(&content_type).contains("pass --content-type"), "{}", stderr(&content_type));

    let future = sluice(&["plugin", "check", sluice_future_contract()]);
    assert!(!future.status.success());
    assert!(stderr(&future).contains(
        "was built for contract sluice:plugin@9.0.0; this sluice supports sluice:plugin@0.1.0, sluice:plugin@0.2.0"
    ));
}

fn sluice_future_contract() -> &'static str {
    sluice_test_plugins::FUTURE_CONTRACT
}

#[test]
fn a_plugin_dropped_into_the_plugins_dir_is_listed() {
    let data = data_with_plugin(sluice_test_plugins::SWAP_V2, "swap.wasm");
    let output = sluice_on(data.path(), &["plugin", "list", "--format", "json"]);
    let list = stdout_json(&output);
    let swap = list.as_array().unwrap().iter().find(|p| p["name"] == "swap").expect("swap listed");
    assert_eq!(swap["version"], "2.0.0");
    assert!(data.path().join("cache/plugins").is_dir(), "compiled code is cached in an existing data dir");
}

/// Writes `body` to a file named `name` in a fresh directory and returns both.
fn input_file(name: &str, body: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

#[test]
fn check_runs_split_then_transform_and_fails_on_records_transform_refuses_after_split() {
    // poison's split takes every line; its transform refuses REJECT: the API would answer 202 for
    // it and the stream would dead-letter it.
    let (_dir, input) = input_file("body.json", "{\"v\": \"a\"}\n{\"v\": \"REJECT\"}\n{\"v\": \"b\"}\n");
    let output = sluice(&["plugin", "check", sluice_test_plugins::POISON, "--input", &input, "--format", "json"]);
    assert!(!output.status.success());
    assert_eq!(
        stderr(&output).trim(),
        "error: 1 record(s) that split accepted were refused by transform: the API would answer 202 for them and \
         the stream would then dead-letter them (make split refuse them, or transform accept them)"
    );
    let out: Value = serde_json::from_slice(&output.stdout).expect("the report is printed first");
    assert_eq!(out["accepted"], 3);
    assert_eq!(out["tables"]["events"].as_array().unwrap().len(), 2);
    assert_eq!(out["rejected"], serde_json::json!([]));
    assert_eq!(out["refused_after_split"][0]["index"], 1, "the index is the record's in the body");

    let lenient = stdout_json(&sluice(&[
        "plugin",
        "check",
        sluice_test_plugins::POISON,
        "--input",
        &input,
        "--set",
        "lenient=true",
        "--format",
        "json",
    ]));
    assert_eq!(lenient["tables"]["events"].as_array().unwrap().len(), 3);
    assert_eq!(lenient["refused_after_split"], serde_json::json!([]));

    // A record transform says nothing of (no row, no rejection) fails the check too: the stream
    // dead-letters it.
    let (_dir, skipped) = input_file("skip.json", "{\"v\": \"a\"}\n{\"v\": \"SKIP\"}\n");
    let output = sluice(&["plugin", "check", sluice_test_plugins::POISON, "--input", &skipped, "--format", "json"]);
    assert!(!output.status.success());
    let out: Value = serde_json::from_slice(&output.stdout).expect("the report is printed first");
    assert_eq!(out["refused_after_split"][0]["index"], 1);
    assert_eq!(out["refused_after_split"][0]["reason"], sluice_stream::NO_OUTCOME);
}

#[test]
fn check_names_records_split_said_nothing_about_and_refuses_what_the_api_refuses() {
    // drops-records accepts the first two records, rejects the fourth and loses the rest.
    let body: String = (0..6).map(|i| format!("{{\"n\": {i}}}\n")).collect();
    let (_dir, input) = input_file("body.json", &body);
    let out = stdout_json(&sluice(&[
        "plugin",
        "check",
        sluice_test_plugins::DROPS_RECORDS,
        "--input",
        &input,
        "--format",
        "json",
    ]));
    assert_eq!(out["accepted"], 2);
    let indexes: Vec<u64> = out["rejected"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [2, 3, 4, 5]);
    assert!(out["rejected"][0]["reason"].as_str().unwrap().contains("gave no outcome"), "{}", out["rejected"]);

    let (_dir, malformed) = input_file("bad.json", "{\"n\": 1");
    let refused = sluice(&["plugin", "check", "lab_results", "--input", &malformed]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).starts_with("error: the API would refuse this body with 400: malformed JSON:"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn wit_prints_the_contract_an_outside_project_builds_against() {
    let newest = sluice(&["plugin", "wit"]);
    assert!(newest.status.success());
    let file = std::fs::read(repo().join("wit/plugin.wit")).unwrap();
    assert_eq!(newest.stdout, file);
    let named = sluice(&["plugin", "wit", "0.2.0"]);
    assert_eq!(named.stdout, file);
    let frozen = sluice(&["plugin", "wit", "0.1.0"]);
    assert_eq!(frozen.stdout, std::fs::read(repo().join("wit/deps/sluice-plugin@0.1.0/plugin.wit")).unwrap());

    let unknown = sluice(&["plugin", "wit", "9.9.9"]);
    assert!(!unknown.status.success());
    assert_eq!(stderr(&unknown).trim(), "error: this sluice has no plugin contract 9.9.9; it supports 0.1.0, 0.2.0");
}

/// `plugin check FILE` says when the server would refuse the file because another plugin in the
/// directory writes one of its tables with columns the two cannot share.
#[test]
fn check_refuses_a_file_whose_table_a_loaded_plugin_writes_in_another_shape() {
    let data = data_with_plugin(sluice_test_plugins::POISON, "poison.wasm");
    let plugins = data.path().join("plugins");
    let check = |file: &str| sluice_on(data.path(), &["plugin", "check", file]);
    let refused = check(sluice_test_plugins::RIVAL);
    assert!(!refused.status.success());
    assert_eq!(
        stderr(&refused).trim_end(),
        format!(
            "error: the server on this data directory would not load plugin rival@0.1.0: table `events` is also \
             written by plugin poison@0.1.0 ({}), and the two cannot share it: column `value` is int64 here and \
             string there",
            plugins.join("poison.wasm").display()
        )
    );
    let shared = check(sluice_test_plugins::DROPS_RECORDS);
    assert!(shared.status.success(), "{}", stderr(&shared));
}
