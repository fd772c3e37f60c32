//! `admissions`: EMRBots-style admissions (the seed's `/api_admissions`) into table `admissions`.

use sluice_plugin_sdk::{Column, ColumnType, Field, RecordPlugin, Settings, export_plugin};

/// The admissions plugin.
#[derive(Debug)]
pub struct Admissions;

impl RecordPlugin for Admissions {
    const NAME: &'static str = "admissions";
    const VERSION: &'static str = "0.1.0";
    const DOC: &'static str = "Hospital admissions as sent by the seed's sources (EMRBots layout).";
    const TABLE: &'static str = "admissions";
    const TABLE_DOC: &'static str = "One row per admission record received.";
    const KEY_FIELD: Option<usize> = Some(0);

    fn fields() -> Vec<Field> {
        use ColumnType::{Int32, String, Timestamp};
        vec![
            Field::new("PatientID", Column::new("patientid", String, "Patient identifier (GUID).").required()),
            Field::new(
                "AdmissionID",
                Column::new("admissionid", Int32, "Admission number within the patient.").required(),
            ),
            Field::new(
                "AdmissionStartDate",
                Column::new("admissionstartdate", Timestamp, "Start of the admission, wall clock."),
            ),
            Field::new(
                "AdmissionEndDate",
                Column::new("admissionenddate", Timestamp, "End of the admission, wall clock."),
            ),
            Field::new(
                "PrimaryDiagnosisCode",
                Column::new("primarydiagnosiscode", String, "ICD-10 code of the primary diagnosis."),
            ),
            Field::new(
                "PrimaryDiagnosisDescription",
                Column::new("primarydiagnosisdescription", String, "Text of the primary diagnosis."),
            ),
        ]
    }

    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
}

export_plugin!(sluice_plugin_sdk::Records<Admissions>);

#[cfg(test)]
mod tests;
