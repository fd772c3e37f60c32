//! HL7 v2 messages for `sluice simulate --mllp`: streams of related messages per patient (an
//! ADT^A01 admission, ORU^R01 lab results with 10 to 20 OBX, an ADT^A03 discharge), seeded so a
//! run can be repeated, or the messages of HL7 files replayed.

use std::path::Path;

use anyhow::Context;

/// Lab tests an ORU draws from: LOINC code, name, unit, reference low and high.
const LABS: &[(&str, &str, &str, f64, f64)] = &[
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70.0, 105.0),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136.0, 145.0),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1),
    ("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98.0, 107.0),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.2),
    ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7.0, 20.0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5),
    ("4544-3", "Hematocrit [Volume Fraction] of Blood", "%", 36.0, 52.0),
    ("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 4.5, 11.0),
    ("777-3", "Platelets [#/volume] in Blood", "10*3/uL", 150.0, 400.0),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume]", "U/L", 7.0, 56.0),
    ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume]", "U/L", 10.0, 40.0),
    ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.1, 1.2),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 125.0, 200.0),
    ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 40.0, 150.0),
    ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.5, 10.2),
    ("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 6.0, 8.3),
    ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.5, 5.0),
    ("8867-4", "Heart rate", "/min", 60.0, 100.0),
    ("8310-5", "Body temperature", "Cel", 36.1, 37.2),
];

const FAMILY: &[&str] =
    &["SMITH", "MUELLER", "NGUYEN", "GARCIA", "OKAFOR", "ROSSI", "KOWALSKI", "TANAKA", "DUBOIS", "SILVA"];
const GIVEN: &[&str] = &["ANNA", "JOHN", "MARIA", "WEI", "FATIMA", "LUCA", "OLGA", "KENJI", "AMARA", "PEDRO"];

/// Seeded messages: for each patient, an admission, `results` ORUs, a discharge.
pub struct Hl7Generator {
    rng: fastrand::Rng,
    run: u64,
    sequence: u64,
    pending: std::collections::VecDeque<String>,
}

impl Hl7Generator {
    /// A generator for run `run` (part of every control id: another run sends new messages).
    pub fn new(seed: u64, run: u64) -> Self {
        Self { rng: fastrand::Rng::with_seed(seed), run, sequence: 0, pending: Default::default() }
    }

    /// The next message.
    pub fn message(&mut self) -> String {
        if self.pending.is_empty() {
            self.patient();
        }
        self.pending.pop_front().expect("a patient's messages")
    }

    fn control_id(&mut self) -> String {
        self.sequence += 1;
        format!("S{:08x}{:010}", self.run as u32, self.sequence)
    }

    fn patient(&mut self) {
        let rng = &mut self.rng;
        let patient = format!("MRN{:08}", rng.u32(..100_000_000));
        let visit = format!("V{:09}", rng.u32(..1_000_000_000));
        let family = FAMILY[rng.usize(..FAMILY.len())];
        let given = GIVEN[rng.usize(..GIVEN.len())];
        let sex = if rng.bool() { "F" } else { "M" };
        let birth = format!("{:04}{:02}{:02}", rng.u32(1930..2020), rng.u32(1..13), rng.u32(1..29));
        let class = ["I", "E", "O"][rng.usize(..3)];
        let day = rng.u32(1..29);
        let admit = format!("202411{day:02}{:02}{:02}00", rng.u32(0..24), rng.u32(0..60));
        let pid = format!(
            "PID|1||{patient}^^^HOSP^MR||{family}^{given}||{birth}|{sex}|||1 MAIN ST^^CITY^ST^{:05}",
            rng.u32(10000..99999)
        );
        let pv1 = |end: &str| {
            format!("PV1|1|{class}|4E^{:03}^1^HOSP||||||||||||||||{visit}|||||||||||||||||||||||||{admit}|{end}", day)
        };
        let header = |id: &str, kind: &str| format!("MSH|^~\\&|SIM|HOSP|SLUICE|DW|{admit}||{kind}|{id}|P|2.5.1");
        let mut messages = Vec::new();
        let id = self.control_id();
        messages.push(format!("{}\rEVN|A01|{admit}\r{pid}\r{}\r", header(&id, "ADT^A01^ADT_A01"), pv1("")));
        let results = 1 + self.rng.usize(..2);
        for order in 0..results {
            let id = self.control_id();
            let rng = &mut self.rng;
            let count = 10 + rng.usize(..11);
            let at = format!("202411{day:02}{:02}{:02}00+0000", rng.u32(0..24), rng.u32(0..60));
            let mut oru = format!(
                "{}\r{pid}\r{}\rORC|RE|ORD{order}{id}|FIL{order}{id}\rOBR|1|ORD{order}{id}|FIL{order}{id}|24323-8^Comprehensive metabolic panel^LN|||{at}\r",
                header(&id, "ORU^R01^ORU_R01"),
                pv1("")
            );
            for n in 0..count {
                let (code, name, unit, low, high) = LABS[(n + order * 3) % LABS.len()];
                let value = low + (high - low) * (rng.f64() * 1.4 - 0.2);
                let flag = if value < low {
                    "L"
                } else if value > high {
                    "H"
                } else {
                    "N"
                };
                oru.push_str(&format!(
                    "OBX|{}|NM|{code}^{name}^LN||{value:.1}|{unit}^^UCUM|{low}-{high}|{flag}|||F|||{at}\r",
                    n + 1
                ));
            }
            messages.push(oru);
        }
        let id = self.control_id();
        let discharge = format!("202411{:02}120000", (day + 1).min(30));
        messages.push(format!("{}\rEVN|A03|{discharge}\r{pid}\r{}\r", header(&id, "ADT^A03^ADT_A03"), pv1(&discharge)));
        self.pending.extend(messages);
    }
}

/// The messages of HL7 files, one per frame (batch envelopes dropped): each message starts at
/// an `MSH` line.
pub fn replay_messages(files: &[impl AsRef<Path>]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut messages = Vec::new();
    for file in files {
        let file = file.as_ref();
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let mut current: Option<Vec<u8>> = None;
        for line in bytes.split(|&b| b == b'\r' || b == b'\n') {
            let line = line.trim_ascii_end();
            if line.is_empty() || [&b"FHS"[..], b"BHS", b"BTS", b"FTS"].iter().any(|s| line.starts_with(s)) {
                continue;
            }
            if line.starts_with(b"MSH") {
                messages.extend(current.take());
                current = Some(Vec::new());
            }
            if let Some(message) = current.as_mut() {
                message.extend_from_slice(line);
                message.push(b'\r');
            }
        }
        messages.extend(current.take());
    }
    anyhow::ensure!(!messages.is_empty(), "the files hold no HL7 v2 message (no MSH segment)");
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patient_is_admitted_has_results_and_is_discharged() {
        let mut generator = Hl7Generator::new(7, 1);
        let first = generator.message();
        assert!(first.contains("|ADT^A01^ADT_A01|"), "{first}");
        let mut kinds = vec!["ADT^A01"];
        loop {
            let message = generator.message();
            if message.contains("|ADT^A03^") {
                kinds.push("ADT^A03");
                break;
            }
            assert!(message.contains("|ORU^R01^"), "{message}");
            let obx = message.matches("\rOBX|").count();
            assert!((10..=20).contains(&obx), "{obx} OBX");
            kinds.push("ORU^R01");
        }
        assert!(kinds.len() >= 3);
        let again: Vec<String> = {
            let mut generator = Hl7Generator::new(7, 1);
            (0..kinds.len()).map(|_| generator.message()).collect()
        };
        assert_eq!(again[0], first, "the same seed gives the same messages");
    }

    #[test]
    fn the_bundled_plugin_maps_every_generated_message() {
        use sluice_plugin_sdk::Plugin as _;
        let settings = sluice_plugin_sdk::Settings::new(&hl7v2::Hl7v2::manifest().settings, &[]).unwrap();
        let plugin = hl7v2::Hl7v2::configure(&settings).unwrap();
        let mut generator = Hl7Generator::new(11, 2);
        let mut observations = 0;
        for _ in 0..200 {
            let message = generator.message();
            for mapped in plugin.messages(message.as_bytes()) {
                let (_, rows) = mapped.unwrap_or_else(|refusal| panic!("{refusal:?}: {message}"));
                assert_eq!(rows.encounter.len(), 1);
                assert_ne!(rows.encounter[0][4], hl7v2::Cell::Null, "PV1-44 is the admit time");
                observations += rows.observation.len();
            }
        }
        assert!(observations > 1000, "{observations}");
    }
}
