use sluice_plugin_sdk::{OwnedBatch, Plugin, Records, Settings, Value};

use super::LabResults;

fn plugin() -> Records<LabResults> {
    Records::<LabResults>::configure(&Settings::default()).unwrap()
}

#[test]
fn many_payloads_in_one_batch_keep_their_input_index() {
    let mut batch = OwnedBatch::new("application/json");
    batch.push(br#"{"PatientID": "p1", "AdmissionID": 1, "LabName": "CBC: HEMOGLOBIN", "LabValue": 13.2, "LabUnits": "gm/dl", "LabDateTime": "1992-07-01 01:36:17.910"}"#);
    batch.push(br#"{"PatientID": "p2", "LabValue": "not a number"}"#);
    batch.push(br#""{\"PatientID\": \"p3\", \"LabValue\": \"7\"}""#);
    let out = plugin().transform(&batch.as_batch());
    let table = out.table("lab_results").unwrap();
    assert_eq!(table.inputs, vec![0, 2]);
    assert_eq!(table.columns[3].get(0), Value::Float64(13.2));
    assert_eq!(table.columns[3].get(1), Value::Float64(7.0));
    assert_eq!(table.columns[2].get(1), Value::Null);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!((out.rejected[0].input, out.rejected[0].field.as_deref()), (1, Some("LabValue")));
}
