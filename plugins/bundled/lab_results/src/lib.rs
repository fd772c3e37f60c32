//! `lab_results`: EMRBots-style lab results (the seed's `/api_lab_results`) into table
//! `lab_results`.

use sluice_plugin_sdk::{Column, ColumnType, Field, RecordPlugin, Settings, export_plugin};

/// The lab results plugin.
#[derive(Debug)]
pub struct LabResults;

impl RecordPlugin for LabResults {
    const NAME: &'static str = "lab_results";
    const VERSION: &'static str = "0.1.0";
    const DOC: &'static str = "Laboratory results as sent by the seed's sources (EMRBots layout).";
    const TABLE: &'static str = "lab_results";
    const TABLE_DOC: &'static str = "One row per lab result received.";
    const KEY_FIELD: Option<usize> = Some(0);

    fn fields() -> Vec<Field> {
        use ColumnType::{Float64, Int32, String, Timestamp};
        vec![
            Field::new("PatientID", Column::new("patientid", String, "Patient identifier (GUID).").required()),
            Field::new("AdmissionID", Column::new("admissionid", Int32, "Admission the result belongs to.")),
            Field::new("LabName", Column::new("labname", String, "Test name, e.g. `CBC: HEMOGLOBIN`.")),
            Field::new("LabValue", Column::new("labvalue", Float64, "Measured value.")),
            Field::new("LabUnits", Column::new("labunits", String, "Units of the value, e.g. `gm/dl`.")),
            Field::new(
                "LabDateTime",
                Column::new("labdatetime", Timestamp, "When the sample was measured, wall clock."),
            ),
        ]
    }

    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
}

export_plugin!(sluice_plugin_sdk::Records<LabResults>);

#[cfg(test)]
mod tests;
