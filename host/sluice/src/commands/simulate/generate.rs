//! EMRBots-shaped synthetic records: patients, their admissions, and lab results of those
//! admissions, from a seeded generator (the same seed gives the same records).

use serde::Serialize;

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

    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        items[self.rng.usize(..items.len())]
    }

    fn guid(&mut self) -> String {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut id = String::with_capacity(36);
        for (group, digits) in [8, 4, 4, 4, 12].into_iter().enumerate() {
            if group > 0 {
                id.push('-');
            }
            for _ in 0..digits {
                id.push(HEX[self.rng.u32(..16) as usize] as char);
            }
        }
        id
    }

    fn timestamp(&mut self, first_year: i32, last_year: i32) -> String {
        use std::fmt::Write;
        let mut text = String::with_capacity(23);
        let _ = write!(
            text,
            "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
            self.rng.i32(first_year..=last_year),
            self.rng.u32(1..=12),
            self.rng.u32(1..=28),
            self.rng.u32(0..24),
            self.rng.u32(0..60),
            self.rng.u32(0..60),
            self.rng.u32(0..1000)
        );
        text
    }

    fn malformed(&mut self) -> bool {
        self.malformed_share > 0.0 && self.rng.f64() < self.malformed_share
    }

    /// One record for `source`.
    pub fn record(&mut self, source: &str) -> Record {
        match source {
            "admissions" if !self.patients.is_empty() => Record::Admission(self.admission()),
            "lab_results" if !self.admitted.is_empty() => Record::LabResult(self.lab_result()),
            // Admissions and lab results need a patient (and an admission) to refer to.
            "admissions" | "lab_results" | "patients" => Record::Patient(self.patient()),
            other => panic!("no generator for source `{other}`"),
        }
    }

    fn patient(&mut self) -> Patient {
        let id = self.guid();
        if self.patients.len() < REMEMBERED_PATIENTS {
            self.patients.push((id.clone(), 0));
        }
        let poverty = if self.malformed() {
            Number::Malformed
        } else {
            Number::Float((self.rng.f64() * 10000.0).round() / 100.0)
        };
        Patient {
            id,
            gender: self.pick(GENDERS),
            date_of_birth: self.timestamp(1930, 2005),
            race: self.pick(RACES),
            marital_status: self.pick(MARITAL),
            language: self.pick(LANGUAGES),
            poverty,
        }
    }

    fn admission(&mut self) -> Admission {
        let index = self.rng.usize(..self.patients.len());
        self.patients[index].1 += 1;
        if self.patients[index].1 == 1 {
            self.admitted.push(index);
        }
        let (patient, admission) = self.patients[index].clone();
        let (code, description) = DIAGNOSES[self.rng.usize(..DIAGNOSES.len())];
        let admission_id = if self.malformed() { Number::Malformed } else { Number::Integer(admission) };
        Admission {
            patient,
            admission_id,
            start: self.timestamp(2000, 2012),
            end: self.timestamp(2013, 2014),
            code,
            description,
        }
    }

    fn lab_result(&mut self) -> LabResult {
        let index = self.admitted[self.rng.usize(..self.admitted.len())];
        let (patient, admissions) = self.patients[index].clone();
        let (name, units, low, high) = LABS[self.rng.usize(..LABS.len())];
        let value = if self.malformed() {
            Number::Malformed
        } else {
            Number::Float(((low + self.rng.f64() * (high - low)) * 10.0).round() / 10.0)
        };
        LabResult {
            patient,
            admission_id: self.rng.i32(1..=admissions),
            name,
            value,
            units,
            date_time: self.timestamp(2000, 2014),
        }
    }
}

/// A generated record, serialized as the seed's JSON object (keys in the seed's order).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Record {
    /// For `patients`.
    Patient(Patient),
    /// For `admissions`.
    Admission(Admission),
    /// For `lab_results`.
    LabResult(LabResult),
}

/// A number, or the string a malformed record carries in its place.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Number {
    /// An integer.
    Integer(i32),
    /// A double.
    Float(f64),
    /// `"abc"`, which the plugins reject.
    #[serde(serialize_with = "malformed")]
    Malformed,
}

fn malformed<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("abc")
}

/// A patient record.
#[derive(Serialize)]
pub struct Patient {
    #[serde(rename = "PatientID")]
    id: String,
    #[serde(rename = "PatientGender")]
    gender: &'static str,
    #[serde(rename = "PatientDateOfBirth")]
    date_of_birth: String,
    #[serde(rename = "PatientRace")]
    race: &'static str,
    #[serde(rename = "PatientMaritalStatus")]
    marital_status: &'static str,
    #[serde(rename = "PatientLanguage")]
    language: &'static str,
    #[serde(rename = "PatientPopulationPercentageBelowPoverty")]
    poverty: Number,
}

/// An admission record.
#[derive(Serialize)]
pub struct Admission {
    #[serde(rename = "PatientID")]
    patient: String,
    #[serde(rename = "AdmissionID")]
    admission_id: Number,
    #[serde(rename = "AdmissionStartDate")]
    start: String,
    #[serde(rename = "AdmissionEndDate")]
    end: String,
    #[serde(rename = "PrimaryDiagnosisCode")]
    code: &'static str,
    #[serde(rename = "PrimaryDiagnosisDescription")]
    description: &'static str,
}

/// A lab result record.
#[derive(Serialize)]
pub struct LabResult {
    #[serde(rename = "PatientID")]
    patient: String,
    #[serde(rename = "AdmissionID")]
    admission_id: i32,
    #[serde(rename = "LabName")]
    name: &'static str,
    #[serde(rename = "LabValue")]
    value: Number,
    #[serde(rename = "LabUnits")]
    units: &'static str,
    #[serde(rename = "LabDateTime")]
    date_time: String,
}
