//! The seed's three sources (patients, admissions, lab results): records with a few of each kind
//! of defect, posted with `sluice simulate`, and the seed's queries checked in Trino against
//! aggregates computed here from what was sent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Records of one source: every line as sent, and the good ones as (field, value) maps.
pub struct Sent {
    pub lines: Vec<String>,
    pub good: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl Sent {
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.ndjson"));
        std::fs::write(&path, self.lines.join("\n") + "\n").unwrap();
        path
    }

    /// The expected `select FIELD, count(*) ... group by 1` as sorted (value, count) text pairs;
    /// `Unknown` is NULL.
    pub fn counts(&self, field: &str) -> Vec<(String, i64)> {
        let mut counts: HashMap<String, i64> = HashMap::new();
        for record in &self.good {
            let value = match record[field].as_str() {
                Some("Unknown") | None => "NULL".to_string(),
                Some(text) => text.to_string(),
            };
            *counts.entry(value).or_default() += 1;
        }
        let mut counts: Vec<(String, i64)> = counts.into_iter().collect();
        counts.sort();
        counts
    }
}

/// Seed-shaped records with a few of each kind of defect, from a fixed pattern (not the
/// simulator's generator, so that the expectations are computed independently of it).
pub fn seed_records() -> (Sent, Sent, Sent) {
    let genders = ["Male", "Female", "Female"];
    let languages = ["English", "Spanish", "Unknown", "English", "Icelandic"];
    let diagnoses = ["Essential (primary) hypertension", "Headache", "Low back pain", "Headache", "Asthma"];
    let labs = ["CBC: HEMOGLOBIN", "METABOLIC: GLUCOSE", "CBC: HEMOGLOBIN", "URINALYSIS: PH", "CBC: HEMOGLOBIN"];
    let (mut patients, mut admissions, mut labs_sent) = (
        Sent { lines: vec![], good: vec![] },
        Sent { lines: vec![], good: vec![] },
        Sent { lines: vec![], good: vec![] },
    );
    for i in 0..300 {
        let id = format!("{i:08X}-0000-4000-8000-000000000000");
        let poverty = if i % 50 == 7 { serde_json::json!("not a number") } else { serde_json::json!(i as f64 / 10.0) };
        let record = serde_json::json!({
            "PatientID": id, "PatientGender": genders[i % 3], "PatientDateOfBirth": format!("19{:02}-01-04 14:49:59.587", 30 + i % 60),
            "PatientRace": "White", "PatientMaritalStatus": "Single", "PatientLanguage": languages[i % 5],
            "PatientPopulationPercentageBelowPoverty": poverty,
        });
        patients.lines.push(record.to_string());
        if i % 50 != 7 {
            patients.good.push(record.as_object().unwrap().clone());
        }
        for a in 0..(i % 3) {
            let admission_id = if i % 40 == 11 && a == 0 { serde_json::json!("x") } else { serde_json::json!(a + 1) };
            let record = serde_json::json!({
                "PatientID": id, "AdmissionID": admission_id, "AdmissionStartDate": "2011-06-26 10:00:00.000",
                "AdmissionEndDate": "6/27/2012", "PrimaryDiagnosisCode": "X", "PrimaryDiagnosisDescription": diagnoses[(i + a) % 5],
            });
            admissions.lines.push(record.to_string());
            if !(i % 40 == 11 && a == 0) {
                admissions.good.push(record.as_object().unwrap().clone());
            }
            let value = if i % 30 == 5 { serde_json::json!("abc") } else { serde_json::json!(10.5 + a as f64) };
            let record = serde_json::json!({
                "PatientID": id, "AdmissionID": a + 1, "LabName": labs[(i + a) % 5], "LabValue": value,
                "LabUnits": "gm/dl", "LabDateTime": "2011-06-27 07:10:03.350",
            });
            labs_sent.lines.push(record.to_string());
            if i % 30 != 5 {
                labs_sent.good.push(record.as_object().unwrap().clone());
            }
        }
    }
    (patients, admissions, labs_sent)
}

/// Rows of a Trino result as (first column as text, second as count), sorted.
pub fn pairs(rows: Vec<Vec<serde_json::Value>>) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = rows
        .into_iter()
        .map(|r| (r[0].as_str().map_or_else(|| "NULL".to_string(), str::to_string), r[1].as_i64().unwrap()))
        .collect();
    out.sort();
    out
}

/// Posts the seed records (every source, a share of the requests unauthorized) to `url` with
/// `sluice simulate --replay`; `sluice` is the command with the feeder's `SLUICE_PASSWORD` set.
/// Checks the simulator's report: every good record accepted, every defective one rejected.
pub fn simulate_seed(mut sluice: Command, url: &str, dir: &Path) -> [Sent; 3] {
    let (patients, admissions, labs) = seed_records();
    let files = [patients.write(dir, "patients"), admissions.write(dir, "admissions"), labs.write(dir, "lab_results")];
    let output = sluice
        .args(["simulate", "--url", url, "--user", "feeder", "--json", "--seed", "42"])
        .args(["--batch", "50", "--unauthorized-share", "0.2", "--connections", "2"])
        .arg("--replay")
        .arg(format!("patients={}", files[0].display()))
        .arg("--replay")
        .arg(format!("admissions={}", files[1].display()))
        .arg("--replay")
        .arg(format!("lab_results={}", files[2].display()))
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(output.status.success(), "simulate failed: {}", String::from_utf8_lossy(&output.stdout));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["unauthorized"].as_u64().unwrap() > 0, "{report}");
    for (source, sent) in [("patients", &patients), ("admissions", &admissions), ("lab_results", &labs)] {
        assert_eq!(
            report["sources"][source]["accepted"].as_u64().unwrap() as usize,
            sent.good.len(),
            "{source}: {report}"
        );
        assert_eq!(
            report["sources"][source]["rejected"].as_u64().unwrap() as usize,
            sent.lines.len() - sent.good.len(),
            "{source}: {report}"
        );
    }
    [patients, admissions, labs]
}

/// Waits (at most `limit`) until Trino at `trino` shows, in `schema`, every accepted record of the
/// seed and never more, then checks the seed's queries: tables, column types, and the exact
/// aggregates of what was sent.
pub fn check_seed_queries(trino: &str, schema: &str, sent: &[Sent; 3], limit: Duration) {
    let [patients, admissions, labs] = sent;
    let client = sluice_catalog::TrinoClient::new(trino, "analyst").with_schema("hive", schema);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let query = |sql: &str| runtime.block_on(client.execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"));
    // The catalog follows by itself: wait until every accepted record is visible to Trino.
    let deadline = Instant::now() + limit;
    for (table, sent) in [("patients", patients), ("admissions", admissions), ("lab_results", labs)] {
        loop {
            let visible = runtime
                .block_on(client.execute(&format!("select count(*) from {table}")))
                .ok()
                .and_then(|rows| rows.first().and_then(|r| r[0].as_i64()))
                .unwrap_or(0);
            if visible as usize == sent.good.len() {
                break;
            }
            assert!(visible as usize <= sent.good.len(), "{table}: {visible} rows, more than accepted");
            assert!(Instant::now() < deadline, "{table}: {visible} of {} rows visible in Trino", sent.good.len());
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    let tables: Vec<String> = query("show tables").into_iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
    // The seed's three tables, and the clinical tables of the bundled hl7v2 plugin.
    assert_eq!(
        tables,
        vec!["admissions", "condition", "encounter", "lab_results", "message", "observation", "patient", "patients"]
    );
    let types: HashMap<String, String> = query("describe patients")
        .into_iter()
        .chain(query("describe lab_results"))
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(types["patientdateofbirth"], "timestamp(6)");
    assert_eq!(types["patientpopulationpercentagebelowpoverty"], "double");
    assert_eq!(types["labvalue"], "double");
    assert_eq!(types["admissionid"], "integer");

    assert_eq!(
        pairs(query("select patientgender, count(*) from patients group by patientgender")),
        patients.counts("PatientGender")
    );
    assert_eq!(
        pairs(query("select patientlanguage, count(*) from patients group by patientlanguage")),
        patients.counts("PatientLanguage")
    );
    let mut diagnoses = admissions.counts("PrimaryDiagnosisDescription");
    diagnoses.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    diagnoses.truncate(10);
    let mut top = pairs(query(
        "select primarydiagnosisdescription, count(*) from admissions group by 1 order by 2 desc limit 10",
    ));
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert_eq!(top, diagnoses);
    let mut lab_counts = labs.counts("LabName");
    lab_counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    assert!(lab_counts.len() < 2 || lab_counts[0].1 > lab_counts[1].1, "the test data has one most frequent lab");
    assert_eq!(
        pairs(query("select labname, count(*) from lab_results group by 1 order by 2 desc limit 1")),
        vec![lab_counts[0].clone()]
    );
    let born =
        query("select patientdateofbirth from patients where patientid = '00000000-0000-4000-8000-000000000000'");
    assert_eq!(born, vec![vec![serde_json::json!("1930-01-04 14:49:59.587")]]);
}
