use sluice_plugin_sdk::{Output, OwnedBatch, Plugin, Records, Settings, Value};

use super::Patients;

fn plugin(settings: &[(&str, &str)]) -> Records<Patients> {
    let given: Vec<(String, String)> = settings.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    let settings = Settings::new(&Records::<Patients>::manifest().settings, &given).unwrap();
    Records::<Patients>::configure(&settings).unwrap()
}

fn transform(content_type: &str, body: &str) -> Output {
    plugin(&[]).transform(&OwnedBatch::single(content_type, body.as_bytes()).as_batch())
}

const OBJECT: &str = r#"{"PatientID": "FB2ABB23-C9D0-4D09-8464-49BF0B982F0F", "PatientGender": "Male",
  "PatientDateOfBirth": "1947-12-28 02:45:40.547", "PatientRace": "Unknown", "PatientMaritalStatus": "Married",
  "PatientLanguage": "Icelandic", "PatientPopulationPercentageBelowPoverty": 18.08}"#;

fn micros(text: &str) -> i64 {
    sluice_plugin_sdk::values::parse_timestamp(text).unwrap()
}

#[test]
fn a_seed_object_becomes_one_typed_row_with_unknown_as_null() {
    let out = transform("application/json", OBJECT);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let table = out.table("patients").unwrap();
    assert_eq!(table.len(), 1);
    let row: Vec<Value<'_>> = table.columns.iter().map(|c| c.get(0)).collect();
    assert_eq!(
        row,
        vec![
            Value::String("FB2ABB23-C9D0-4D09-8464-49BF0B982F0F"),
            Value::String("Male"),
            Value::Timestamp(micros("1947-12-28 02:45:40.547")),
            Value::Null,
            Value::String("Married"),
            Value::String("Icelandic"),
            Value::Float64(18.08),
        ]
    );
}

#[test]
fn every_body_shape_gives_the_same_rows() {
    let encoded = serde_json_string(OBJECT);
    let tsv = "PatientID\tPatientGender\tPatientDateOfBirth\tPatientRace\tPatientMaritalStatus\tPatientLanguage\tPatientPopulationPercentageBelowPoverty\r\n\
               FB2ABB23-C9D0-4D09-8464-49BF0B982F0F\tMale\t1947-12-28 02:45:40.547\tUnknown\tMarried\tIcelandic\t18.08\r\n";
    let csv = format!("\u{feff}ID,{}", tsv.replace('\t', ",").replace("\r\nFB2", "\r\n0,FB2"));
    let expected = transform("application/json", OBJECT);
    for (content_type, body) in [
        ("application/json", encoded.clone()),
        ("application/json", format!("[{OBJECT}, {encoded}]")),
        ("application/x-ndjson", format!("{}\n{}\n", OBJECT.replace('\n', " "), OBJECT.replace('\n', " "))),
        ("text/tab-separated-values", tsv.to_string()),
        ("text/csv", csv),
    ] {
        let out = transform(content_type, &body);
        assert!(out.rejected.is_empty(), "{content_type}: {:?}", out.rejected);
        let table = out.table("patients").unwrap();
        let first = expected.table("patients").unwrap();
        for (column, want) in table.columns.iter().zip(&first.columns) {
            for row in 0..table.len() {
                assert_eq!(column.get(row), want.get(0), "{content_type} row {row}");
            }
        }
    }
}

fn serde_json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn bad_records_are_rejected_with_reason_and_field_and_the_rest_go_on() {
    let body = r#"[
        {"PatientID": "a", "PatientDateOfBirth": "1980-02-30 00:00:00"},
        {"PatientGender": "Female"},
        {"PatientID": "b", "PatientPopulationPercentageBelowPoverty": "lots"},
        {"PatientID": "c", "PatientDateOfBirth": "2/29/1980"}
    ]"#;
    let out = transform("application/json", body);
    let reasons: Vec<(u32, &str, Option<&str>)> =
        out.rejected.iter().map(|r| (r.record, r.reason.as_str(), r.field.as_deref())).collect();
    assert_eq!(
        reasons,
        vec![
            (0, "PatientDateOfBirth is not a possible date", Some("PatientDateOfBirth")),
            (1, "PatientID is missing or Unknown", Some("PatientID")),
            (
                2,
                "PatientPopulationPercentageBelowPoverty is not a number",
                Some("PatientPopulationPercentageBelowPoverty")
            ),
        ]
    );
    let table = out.table("patients").unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(table.columns[0].get(0), Value::String("c"));
    assert_eq!(table.columns[2].get(0), Value::Timestamp(micros("1980-02-29")));
}

#[test]
fn the_seed_filter_is_a_setting_off_by_default() {
    let body = r#"[{"PatientID": "a", "PatientRace": "Unknown", "PatientLanguage": "English"},
                   {"PatientID": "b", "PatientRace": "White", "PatientLanguage": "unknown"},
                   {"PatientID": "c", "PatientRace": "White", "PatientLanguage": "English"}]"#;
    let batch = OwnedBatch::single("application/json", body.as_bytes());
    assert_eq!(plugin(&[]).transform(&batch.as_batch()).table("patients").unwrap().len(), 3);
    let out = plugin(&[("drop-unknown", "true")]).transform(&batch.as_batch());
    assert_eq!(out.table("patients").unwrap().len(), 1);
    assert_eq!(out.rejected[0].reason, "dropped by setting drop-unknown: PatientRace is unknown");
    assert_eq!(out.rejected[1].field.as_deref(), Some("PatientLanguage"));
}

#[test]
fn bad_settings_are_refused() {
    let declared = Records::<Patients>::manifest().settings;
    let settings = Settings::new(&declared, &[("drop-unknown".into(), "perhaps".into())]).unwrap();
    assert_eq!(
        Records::<Patients>::configure(&settings).unwrap_err(),
        "setting `drop-unknown` must be true or false, not `perhaps`"
    );
}

#[test]
fn split_gives_canonical_records_keyed_by_patient_that_transform_reads_back() {
    let body = "PatientID,PatientGender,Unnamed: 0\r\np1,Female,9\r\n,Male,10\r\np2,Unknown,11\r\n";
    let p = plugin(&[]);
    let split = p.split(&OwnedBatch::single("text/csv", body.as_bytes()).as_batch());
    let records: Vec<&[u8]> = split.records().collect();
    assert_eq!(
        records,
        vec![
            &br#"{"PatientID":"p1","PatientGender":"Female"}"#[..],
            br#"{"PatientID":"p2","PatientGender":"Unknown"}"#
        ]
    );
    let keys: Vec<(u32, Option<&str>)> = split.origins.iter().map(|o| (o.record, o.key.as_deref())).collect();
    assert_eq!(keys, vec![(0, Some("p1")), (2, Some("p2"))]);
    assert_eq!(split.rejected.len(), 1);
    assert_eq!(split.rejected[0].record, 1);

    let canonical =
        OwnedBatch { content_type: split.content_type.clone(), data: split.data.clone(), ends: split.ends.clone() };
    let out = p.transform(&canonical.as_batch());
    let table = out.table("patients").unwrap();
    assert_eq!(table.inputs, vec![0, 1]);
    assert_eq!(table.columns[1].get(1), Value::Null);
}
