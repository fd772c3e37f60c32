//! `patients`: EMRBots-style patient records (the seed's `/api_patient`) into table `patients`.

use sluice_plugin_sdk::{Column, ColumnType, Field, RecordPlugin, Setting, Settings, Value, export_plugin};

/// Index of `PatientRace` in [`Patients::fields`].
const RACE: usize = 3;
/// Index of `PatientLanguage` in [`Patients::fields`].
const LANGUAGE: usize = 5;

/// The patients plugin. With `drop-unknown = true` it reproduces the seed's filter: a patient
/// whose race or language is unknown is rejected (with that reason) instead of stored.
#[derive(Debug)]
pub struct Patients {
    drop_unknown: bool,
}

impl RecordPlugin for Patients {
    const NAME: &'static str = "patients";
    const VERSION: &'static str = "0.1.0";
    const DOC: &'static str = "Patient demographics as sent by the seed's sources (EMRBots layout).";
    const TABLE: &'static str = "patients";
    const TABLE_DOC: &'static str = "One row per patient record received.";
    const KEY_FIELD: Option<usize> = Some(0);

    fn fields() -> Vec<Field> {
        use ColumnType::{Float64, String, Timestamp};
        vec![
            Field::new("PatientID", Column::new("patientid", String, "Patient identifier (GUID).").required()),
            Field::new("PatientGender", Column::new("patientgender", String, "Gender as recorded.")),
            Field::new(
                "PatientDateOfBirth",
                Column::new("patientdateofbirth", Timestamp, "Date and time of birth, wall clock."),
            ),
            Field::new("PatientRace", Column::new("patientrace", String, "Race as recorded; NULL when unknown.")),
            Field::new(
                "PatientMaritalStatus",
                Column::new("patientmaritalstatus", String, "Marital status; NULL when unknown."),
            ),
            Field::new(
                "PatientLanguage",
                Column::new("patientlanguage", String, "Preferred language; NULL when unknown."),
            ),
            Field::new(
                "PatientPopulationPercentageBelowPoverty",
                Column::new(
                    "patientpopulationpercentagebelowpoverty",
                    Float64,
                    "Percentage of the patient's area population below the poverty line.",
                ),
            ),
        ]
    }

    fn settings() -> Vec<Setting> {
        vec![Setting::new(
            "drop-unknown",
            Some("false"),
            "true: reject patients whose race or language is unknown (the seed's filter). false: keep them with NULL.",
        )]
    }

    fn configure(settings: &Settings) -> Result<Self, String> {
        Ok(Self { drop_unknown: settings.flag("drop-unknown")? })
    }

    fn check(&self, row: &[Value<'_>]) -> Result<(), (String, Option<&'static str>)> {
        if self.drop_unknown {
            for (index, field) in [(RACE, "PatientRace"), (LANGUAGE, "PatientLanguage")] {
                if row[index] == Value::Null {
                    return Err((format!("dropped by setting drop-unknown: {field} is unknown"), Some(field)));
                }
            }
        }
        Ok(())
    }
}

export_plugin!(sluice_plugin_sdk::Records<Patients>);

#[cfg(test)]
mod tests;
