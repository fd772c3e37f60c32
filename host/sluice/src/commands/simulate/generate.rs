//! EMRBots-shaped synthetic records: patients, their admissions, and lab results of those
//! admissions, from a seeded generator (the same seed gives the same records).

use serde_json::{Value, json};

const GENDERS: &[&str] = &["Male", "Female"];
const RACES: &[&str] = &["White", "African American", "Asian", "Unknown"];
const MARITAL: &[&str] = &["Married", "Single", "Divorced", "Separated", "Unknown"];
const LANGUAGES: &[&str] = &["English", "Spanish", "Icelandic", "Unknown"];
const DIAGNOSES: &[(&str, &str)] = &[
    ("C69.6", "Malignant neoplasm of orbit"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("M54.5", "Low back pain"),
    ("N39.0", "Urinary tract infection, site not specified"),
    ("R51", "Headache"),
];
const LABS: &[(&str, &str, f64, f64)] = &[
    ("CBC: HEMOGLOBIN", "gm/dl", 10.0, 18.0),
    ("CBC: WHITE BLOOD CELL COUNT", "k/cumm", 3.0, 12.0),
    ("CBC: PLATELET COUNT", "k/cumm", 120.0, 450.0),
    ("METABOLIC: GLUCOSE", "mg/dL", 60.0, 200.0),
    ("METABOLIC: SODIUM", "mmol/L", 130.0, 150.0),
    ("METABOLIC: POTASSIUM", "mmol/L", 3.0, 5.5),
    ("URINALYSIS: PH", "no unit", 4.5, 8.0),
    ("URINALYSIS: SPECIFIC GRAVITY", "no unit", 1.0, 1.04),
];

/// How many patients are remembered for admissions and lab results to refer to, so that a long
/// run's memory stays bounded.
const REMEMBERED_PATIENTS: usize = 200_000;

/// The sources the generator can feed.
pub const SOURCES: &[&str] = &["patients", "admissions", "lab_results"];

/// A seeded generator of related records.
pub struct Generator {
    rng: fastrand::Rng,
    /// Generated patients (the first [`REMEMBERED_PATIENTS`]), with how many admissions each has.
    patients: Vec<(String, i32)>,
    /// Indices in `patients` of those with at least one admission.
    admitted: Vec<usize>,
    malformed_share: f64,
}

impl Generator {
    /// A generator; `malformed_share` of the records get a value the plugins reject.
    pub fn new(seed: u64, malformed_share: f64) -> Self {
        Self { rng: fastrand::Rng::with_seed(seed), patients: Vec::new(), admitted: Vec::new(), malformed_share }
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.rng.usize(..items.len())]
    }

    fn guid(&mut self) -> String {
        let mut hex = |n: usize| (0..n).map(|_| char::from_digit(self.rng.u32(..16), 16).unwrap()).collect::<String>();
        format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12)).to_uppercase()
    }

    fn timestamp(&mut self, first_year: i32, last_year: i32) -> String {
        format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
            self.rng.i32(first_year..=last_year),
            self.rng.u32(1..=12),
            self.rng.u32(1..=28),
            self.rng.u32(0..24),
            self.rng.u32(0..60),
            self.rng.u32(0..60),
            self.rng.u32(0..1000)
        )
    }

    fn malformed(&mut self) -> bool {
        self.malformed_share > 0.0 && self.rng.f64() < self.malformed_share
    }

    /// One record for `source`.
    pub fn record(&mut self, source: &str) -> Value {
        match source {
            "admissions" if !self.patients.is_empty() => self.admission(),
            "lab_results" if !self.admitted.is_empty() => self.lab_result(),
            // Admissions and lab results need a patient (and an admission) to refer to.
            "admissions" | "lab_results" | "patients" => self.patient(),
            other => panic!("no generator for source `{other}`"),
        }
    }

    fn patient(&mut self) -> Value {
        let id = self.guid();
        if self.patients.len() < REMEMBERED_PATIENTS {
            self.patients.push((id.clone(), 0));
        }
        let poverty = if self.malformed() { json!("abc") } else { json!((self.rng.f64() * 10000.0).round() / 100.0) };
        json!({
            "PatientID": id,
            "PatientGender": self.pick(GENDERS),
            "PatientDateOfBirth": self.timestamp(1930, 2005),
            "PatientRace": self.pick(RACES),
            "PatientMaritalStatus": self.pick(MARITAL),
            "PatientLanguage": self.pick(LANGUAGES),
            "PatientPopulationPercentageBelowPoverty": poverty,
        })
    }

    fn admission(&mut self) -> Value {
        let index = self.rng.usize(..self.patients.len());
        self.patients[index].1 += 1;
        if self.patients[index].1 == 1 {
            self.admitted.push(index);
        }
        let (patient, admission) = self.patients[index].clone();
        let (code, description) = DIAGNOSES[self.rng.usize(..DIAGNOSES.len())];
        let admission_id = if self.malformed() { json!("abc") } else { json!(admission) };
        json!({
            "PatientID": patient,
            "AdmissionID": admission_id,
            "AdmissionStartDate": self.timestamp(2000, 2012),
            "AdmissionEndDate": self.timestamp(2013, 2014),
            "PrimaryDiagnosisCode": code,
            "PrimaryDiagnosisDescription": description,
        })
    }

    fn lab_result(&mut self) -> Value {
        let index = self.admitted[self.rng.usize(..self.admitted.len())];
        let (patient, admissions) = self.patients[index].clone();
        let (name, units, low, high) = LABS[self.rng.usize(..LABS.len())];
        let value = if self.malformed() {
            json!("abc")
        } else {
            json!(((low + self.rng.f64() * (high - low)) * 10.0).round() / 10.0)
        };
        json!({
            "PatientID": patient,
            "AdmissionID": self.rng.i32(1..=admissions),
            "LabName": name,
            "LabValue": value,
            "LabUnits": units,
            "LabDateTime": self.timestamp(2000, 2014),
        })
    }
}
