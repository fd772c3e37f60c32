use sluice_plugin_sdk::{OwnedBatch, Plugin, Records, Settings, Value};

use super::Admissions;

fn plugin() -> Records<Admissions> {
    Records::<Admissions>::configure(&Settings::default()).unwrap()
}

fn micros(text: &str) -> i64 {
    sluice_plugin_sdk::values::parse_timestamp(text).unwrap()
}

#[test]
fn both_seed_date_layouts_and_junk_columns() {
    let body = "ID\tPatientID\tAdmissionID\tAdmissionStartDate\tAdmissionEndDate\tPrimaryDiagnosisCode\tPrimaryDiagnosisDescription\n\
                1\tp1\t2\t1974-07-26 15:05:30.333\t6/26/2012\tC69.6\tMalignant neoplasm of orbit\n";
    let out = plugin().transform(&OwnedBatch::single("text/tab-separated-values", body.as_bytes()).as_batch());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let table = out.table("admissions").unwrap();
    let row: Vec<Value<'_>> = table.columns.iter().map(|c| c.get(0)).collect();
    assert_eq!(
        row,
        vec![
            Value::String("p1"),
            Value::Int32(2),
            Value::Timestamp(micros("1974-07-26 15:05:30.333")),
            Value::Timestamp(micros("2012-06-26 00:00:00")),
            Value::String("C69.6"),
            Value::String("Malignant neoplasm of orbit"),
        ]
    );
}

#[test]
fn an_admission_id_that_is_not_an_integer_is_rejected() {
    let body = r#"[{"PatientID": "p", "AdmissionID": "two"}, {"PatientID": "p", "AdmissionID": 2.5},
                   {"PatientID": "p", "AdmissionID": "3"}, {"PatientID": "p"}]"#;
    let out = plugin().transform(&OwnedBatch::single("application/json", body.as_bytes()).as_batch());
    let rejected: Vec<(u32, &str)> = out.rejected.iter().map(|r| (r.record, r.reason.as_str())).collect();
    assert_eq!(
        rejected,
        vec![
            (0, "AdmissionID is not an integer"),
            (1, "AdmissionID is not an integer"),
            (3, "AdmissionID is missing or Unknown")
        ]
    );
    assert_eq!(out.table("admissions").unwrap().columns[1].get(0), Value::Int32(3));
}
