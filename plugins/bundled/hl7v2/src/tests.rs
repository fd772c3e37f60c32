//! The plugin on every shared sample message (tests/data/hl7v2-samples), value by value where a
//! reader of the message knows what it says, and on the bad inputs a sender can produce.

use std::path::{Path, PathBuf};

use sluice_plugin_sdk::{Output, OwnedBatch, Plugin, Settings, SplitOutput, Value};

use super::{CONTENT_TYPE, Hl7v2};

fn plugin(settings: &[(&str, &str)]) -> Hl7v2 {
    let given: Vec<(String, String)> = settings.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    Hl7v2::configure(&Settings::new(&Hl7v2::manifest().settings, &given).unwrap()).unwrap()
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/data/hl7v2-samples")
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(samples().join(name)).unwrap()
}

fn transform(body: &[u8]) -> Output {
    transform_with(&[], body)
}

/// What the host does with a body: `split` it, then `transform` the canonical records. The
/// tables of the one and the rejections of the other (a canonical record is never rejected).
fn transform_with(settings: &[(&str, &str)], body: &[u8]) -> Output {
    let plugin = plugin(settings);
    let split = plugin.split(&OwnedBatch::single(CONTENT_TYPE, body).as_batch());
    let mut canonical = OwnedBatch::new(CONTENT_TYPE);
    for record in split.records() {
        canonical.push(record);
    }
    let mut out = plugin.transform(&canonical.as_batch());
    assert!(out.rejected.is_empty(), "transform rejected a canonical record: {:?}", out.rejected);
    out.rejected = split.rejected;
    out
}

fn split(body: &[u8]) -> SplitOutput {
    plugin(&[]).split(&OwnedBatch::single(CONTENT_TYPE, body).as_batch())
}

/// A cell as text: NULL as `-`, instants as ISO-8601 UTC, dates as `YYYY-MM-DD`.
fn show(value: Value<'_>) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Float64(f) => f.to_string(),
        Value::Instant(t) => {
            chrono::DateTime::from_timestamp_micros(t).unwrap().format("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
        }
        Value::Date(d) => (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::TimeDelta::days(d.into()))
            .format("%Y-%m-%d")
            .to_string(),
        other => format!("{other:?}"),
    }
}

/// Every row of `table`, each cell shown.
fn rows(out: &Output, table: &str) -> Vec<Vec<String>> {
    let Some(t) = out.table(table) else { return Vec::new() };
    (0..t.len()).map(|row| t.columns.iter().map(|c| show(c.get(row))).collect()).collect()
}

/// Column `name` of every row of `table`.
fn column(out: &Output, table: &str, name: &str) -> Vec<String> {
    let schema = Hl7v2::manifest().tables.into_iter().find(|t| t.name == table).unwrap();
    let at = schema.columns.iter().position(|c| c.name == name).unwrap();
    rows(out, table).into_iter().map(|row| row[at].clone()).collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

/// What a reader of a sample expects of one message: its control id, type and patient, and how
/// many patient, encounter, observation and condition rows it holds; or the field of its
/// rejection.
#[derive(Debug, PartialEq)]
enum Expect {
    Message(&'static str, &'static str, &'static str, [usize; 4]),
    Rejected(&'static str),
}
use Expect::{Message, Rejected};

#[test]
fn every_sample_message_gives_the_rows_a_reader_expects() {
    let expected: &[(&str, &[Expect])] = &[
        // ADT^O01 is no trigger event of ADT (SOURCE.md): kept in `message` only.
        ("hl7-dotnetcore/Sample-ADT.txt", &[Message("MSGID12349876", "ADT^O01", "454721", [0, 0, 0, 0])]),
        (
            "hl7-dotnetcore/Sample-BrokenCharacterMessage.txt",
            &[Message("MSG00001", "ADT^A01", "PATID1234", [1, 1, 0, 0])],
        ),
        ("hl7-dotnetcore/Sample-ORM.txt", &[Message("3149", "ORM^O01", "42311", [0, 0, 0, 0])]),
        (
            "linuxforhealth-hl7v2-fhir-converter/ADT-multiline.hl7",
            &[Message("102", "ADT^A01", "PID1234", [1, 1, 3, 0])],
        ),
        (
            "linuxforhealth-hl7v2-fhir-converter/ORU-multiline-short-mixed.hl7",
            &[Message("MSGID00231", "ORU^R01", "0d70c6c8", [1, 1, 4, 0])],
        ),
        (
            "linuxforhealth-hl7v2-fhir-converter/ORU-multiline-short.hl7",
            &[Message("MSGID00231", "ORU^R01", "0d70c6c8", [1, 1, 3, 0])],
        ),
        (
            "linuxforhealth-hl7v2-fhir-converter/ORU-multiline.hl7",
            &[Message("MSGID00231", "ORU^R01", "0d70c6c8", [1, 1, 529, 0])],
        ),
        ("linuxforhealth-hl7v2-fhir-converter/sample_unix.hl7", &[Message("102", "ADT^A01", "PID1234", [1, 1, 1, 0])]),
        ("linuxforhealth-hl7v2-fhir-converter/sample_win.hl7", &[Message("102", "ADT^A01", "PID1234", [1, 1, 1, 0])]),
        ("microsoft-fhir-converter/ADT-A01-01.hl7", &[Message("MSG00001", "ADT^A01", "PATID1234", [1, 1, 1, 1])]),
        ("microsoft-fhir-converter/ADT-A01-02.hl7", &[Message("MSG00001", "ADT^A01", "PATID1234", [1, 1, 0, 0])]),
        ("microsoft-fhir-converter/ADT-A03-01.hl7", &[Message("MSG00001", "ADT^A03", "PATID1234", [1, 1, 1, 1])]),
        ("microsoft-fhir-converter/ADT-A03-02.hl7", &[Message("MSG00001", "ADT^A03", "PATID1234", [1, 1, 0, 0])]),
        ("microsoft-fhir-converter/ADT-A04-01.hl7", &[Message("MSG00001", "ADT^A04", "PATID1234", [1, 1, 1, 1])]),
        ("microsoft-fhir-converter/ADT-A04-02.hl7", &[Message("MSG00001", "ADT^A04", "PATID1234", [1, 1, 0, 0])]),
        ("microsoft-fhir-converter/ADT-A08-01.hl7", &[Message("MSG00001", "ADT^A08", "PATID1234", [1, 1, 1, 1])]),
        ("microsoft-fhir-converter/ADT-A08-02.hl7", &[Message("MSG00001", "ADT^A08", "PATID1234", [1, 1, 0, 0])]),
        ("microsoft-fhir-converter/ADT-A11-01.hl7", &[Message("MSG00001", "ADT^A11", "PATID1234", [1, 1, 1, 0])]),
        ("microsoft-fhir-converter/ADT-A13-01.hl7", &[Message("MSG00001", "ADT^A13", "PATID1234", [1, 1, 1, 1])]),
        // A merge: kept in `message` (the MRG segment is not mapped: nothing is invented).
        ("microsoft-fhir-converter/ADT-A40-01.hl7", &[Message("8919-40", "ADT^A40", "12345", [0, 0, 0, 0])]),
        ("microsoft-fhir-converter/ADT01-23.hl7", &[Message("599102", "ADT^A01", "10006579", [1, 1, 0, 1])]),
        ("microsoft-fhir-converter/ADT01-28.hl7", &[Message("MSG00001", "ADT^A01", "PATID1234", [1, 1, 0, 0])]),
        (
            "microsoft-fhir-converter/ADT04-23.hl7",
            &[Message("Q123456789T123456789X123456", "ADT^A04", "123456789", [1, 1, 0, 0])],
        ),
        ("microsoft-fhir-converter/ADT04-251.hl7", &[Message("1270326314", "ADT^A04", "MRN12345", [1, 1, 0, 0])]),
        ("microsoft-fhir-converter/ADT04-28.hl7", &[Message("1270326314", "ADT^A04", "0000000001", [1, 1, 0, 0])]),
        ("microsoft-fhir-converter/LAB-ORU-1.hl7", &[Message("182", "ORU^R01", "10006579", [1, 0, 10, 0])]),
        ("microsoft-fhir-converter/LAB-ORU-2.hl7", &[Message("ControlID", "ORU^R01", "10006579", [1, 0, 10, 0])]),
        (
            "microsoft-fhir-converter/LRI_2.0-NG_CBC_Typ_Message.hl7",
            &[Message("NIST-LRI-NG-002.00", "ORU^R01", "PATID1234", [1, 0, 28, 0])],
        ),
        // Named MDM, holds an ADT^A01 (SOURCE.md): read by its MSH, not its file name.
        ("microsoft-fhir-converter/MDM_01.hl7", &[Message("MSG00001", "ADT^A01", "PATID1234", [1, 1, 0, 0])]),
        (
            "microsoft-fhir-converter/ORU-R01-01.hl7",
            &[Message("2.16.840.1.114222.4.3.3.5.1.2-20120314235954.325", "ORU^R01", "14", [1, 1, 5, 0])],
        ),
        (
            "microsoft-fhir-converter/ORU-R01-RMGEAD.hl7",
            &[Message("CNTRL-3456", "ORU^R01", "555-44-4444", [1, 0, 1, 0])],
        ),
        ("microsoft-fhir-converter/OUL-R22-01.hl7", &[Message("1932", "OUL^R22", "00000-0000000", [0, 0, 0, 0])]),
        ("microsoft-fhir-converter/SIU_12.hl7", &[Message("MSG00001", "ADT^A60", "PATID1234", [0, 0, 0, 0])]),
        ("microsoft-fhir-converter/VXU-V04-01.hl7", &[Message("MSG00001", "VXU^V04", "PATID1234", [0, 0, 0, 0])]),
        ("node-hl7-client/adt.hl7", &[Message("103102", "ADT^A04", "583295", [1, 1, 1, 1])]),
        (
            "node-hl7-client/batch.hl7",
            &[
                Message("24553", "ADT^A01", "4019060", [1, 0, 0, 0]),
                Message("20171023134421", "RSP^K11", "123456", [0, 0, 0, 0]),
            ],
        ),
        ("python-hl7/rep_sample_hl7.hl7", &[Message("CNTRL-3456", "ORU^R01", "Component1", [1, 0, 0, 0])]),
        ("python-hl7/sample_bad_batch.hl7", &[Rejected("MSH")]),
        // A second FHS inside the message ends it (MSH and EVN only) and leaves the first file
        // without its trailer: all of it refused, the message's PID to PV1 named as segments of
        // no message, nothing of the spliced file stored.
        ("python-hl7/sample_bad_file2.hl7", &[Rejected("MSH"), Rejected("FTS"), Rejected("BTS-1")]),
        (
            "python-hl7/sample_batch2.hl7",
            &[
                Message("12334456778890", "ADT^A04", "0000112234", [1, 1, 0, 0]),
                Message("12334456778891", "ADT^A04", "0000112234", [1, 1, 0, 0]),
            ],
        ),
        (
            "python-hl7/sample_file1.hl7",
            &[
                Message("12334456778890", "ADT^A04", "0000112234", [1, 1, 0, 0]),
                Message("12334456778891", "ADT^A04", "0000112234", [1, 1, 0, 0]),
                Message("12334456778890", "ADT^A04", "0000112234", [1, 1, 0, 0]),
            ],
        ),
        // PID-7 is `196203520`: nine digits, no date.
        ("python-hl7/sample_hl7.hl7", &[Rejected("PID-7")]),
        ("python-hl7/sample_msh.hl7", &[Message("Q150084616T145947960", "ADT^A01", "2148790", [1, 1, 0, 1])]),
    ];
    let mut listed: Vec<String> = Vec::new();
    for folder in std::fs::read_dir(samples()).unwrap() {
        let folder = folder.unwrap().path();
        if folder.is_dir() {
            for file in std::fs::read_dir(&folder).unwrap() {
                let file = file.unwrap().path();
                if !file.file_name().unwrap().to_string_lossy().starts_with("LICENSE") {
                    listed.push(file.strip_prefix(samples()).unwrap().display().to_string());
                }
            }
        }
    }
    listed.sort();
    assert_eq!(listed, expected.iter().map(|(f, _)| f.to_string()).collect::<Vec<_>>(), "every sample file is checked");

    for (file, messages) in expected {
        let p = plugin(&[]);
        let found: Vec<Expect> = p
            .messages(&sample(file))
            .into_iter()
            .map(|mapped| match mapped {
                Ok((_, rows)) => {
                    let type_at = |i: usize| match &rows.message[i] {
                        super::Cell::Text(t) => t.clone(),
                        _ => "-".into(),
                    };
                    let kind = format!("{}^{}", type_at(1), type_at(2));
                    Message(
                        leak(rows.control_id.clone()),
                        leak(kind),
                        leak(rows.patient_id.clone().unwrap_or_default()),
                        [rows.patient.len(), rows.encounter.len(), rows.observation.len(), rows.condition.len()],
                    )
                }
                Err(refusal) => Rejected(leak(refusal.field)),
            })
            .collect();
        assert_eq!(&found, messages, "{file}");
        // transform writes exactly those rows, and one `message` row per accepted message.
        let out = transform(&sample(file));
        let accepted = messages.iter().filter(|m| matches!(m, Message(..))).count();
        assert_eq!(rows(&out, "message").len(), accepted, "{file}");
        assert_eq!(out.rejected.len(), messages.len() - accepted, "{file}");
    }
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

#[test]
fn an_admission_maps_patient_encounter_diagnosis_and_observation_values() {
    let out = transform(&sample("microsoft-fhir-converter/ADT-A01-01.hl7"));
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        rows(&out, "message"),
        vec![strings(&[
            "MSG00001",
            "ADT",
            "A01",
            "ADT_A01",
            "ADTApp",
            "GHHSFacility",
            "EHRApp",
            "GHHRFacility",
            "1989-08-18T09:11:00Z", // 198908181126+0215
            "minute",
            "2.8",
            "P",
            "PATID1234",
            "true",
        ])]
    );
    assert_eq!(
        rows(&out, "patient"),
        vec![strings(&[
            "PATID1234",
            "test1", // PID-3.4, the assigning authority's namespace (test1&2.16.1&HCD)
            "MR",
            "EVERYMAN", // PID-5.1.1 of EVERYMAN&&&&Aniston
            "ADAM",
            "1988-08-18", // 198808181126+0215: the date as written
            "minute",
            "male",
            "true", // PID-30 Y
            "2008-08-25T10:01:30Z",
            "M",
            "ara",
            "99999",
            "MSG00001",
            "ADTApp", // the sender (MSH-3.1, MSH-4.1): a control id is unique only within it
            "GHHSFacility",
        ])]
    );
    assert_eq!(
        rows(&out, "encounter"),
        vec![strings(&[
            "40007716",
            "PATID1234",
            "PRENC", // PV1-2 P
            "in-progress",
            "2015-02-08T10:24:19Z",
            "second",
            "-",
            "-",
            "HUH AE OMU^OMU B^Bed 03^HOMERTON UNIVER^^C^Homerton UH^Floor5",
            "MSG00001",
            "ADTApp",
            "GHHSFacility",
        ])]
    );
    assert_eq!(
        rows(&out, "condition"),
        vec![strings(&[
            "MSG00001-DG1-1",
            "PATID1234",
            "40007716",
            "422504002",
            "SCT",
            "Ischemic stroke(disorder)",
            "A",
            "2004-01-25T07:20:25Z", // 20040125114025+0420
            "second",
            "MSG00001",
            "ADTApp",
            "GHHSFacility",
        ])]
    );
    // OBX-5 `60~120` of type NM: two numbers, so no single value_numeric; both kept as sent.
    assert_eq!(
        rows(&out, "observation"),
        vec![strings(&[
            "MSG00001-OBX-1",
            "PATID1234",
            "40007716",
            "-",
            "S",
            "8867-4",
            "LN",
            "heartrate",
            "NM",
            "-",
            "60~120",
            "beats/min",
            "70-80",
            "A",
            "1999-07-02T00:00:00Z",
            "day",
            "MSG00001",
            "ADTApp",
            "GHHSFacility",
        ])]
    );
}

#[test]
fn a_lab_result_reads_structured_numbers_and_takes_the_order_time() {
    let out = transform(&sample("microsoft-fhir-converter/ORU-R01-RMGEAD.hl7"));
    assert_eq!(
        rows(&out, "observation"),
        vec![strings(&[
            "CNTRL-3456-OBX-1",
            "555-44-4444",
            "-",
            "1045813", // OBR-3, the filler order number
            "F",
            "1554-5",
            "POST 12H CFST:MCNC:PT:SER/PLAS:QN",
            "GLUCOSE",
            "SN",
            "182", // OBX-5 `^182`
            "182",
            "mg/dl",
            "70_105",
            "H",
            "2002-02-15T01:30:00Z", // no OBX-14: OBR-7 20020215073000+0600
            "second",
            "CNTRL-3456",
            "GHH LAB",
            "ELAB-3",
        ])]
    );
    let cbc = transform(&sample("microsoft-fhir-converter/LRI_2.0-NG_CBC_Typ_Message.hl7"));
    let values = column(&cbc, "observation", "value_numeric");
    assert_eq!(values[..3], strings(&["4.41", "12.5", "41"]));
    assert_eq!(column(&cbc, "observation", "interpretation")[3], "HH");
    assert_eq!(column(&cbc, "observation", "value_text")[20], "260415000^not detected^SCT^^^^^^None seen");
    assert_eq!(column(&cbc, "observation", "value_numeric")[20], "-", "a coded value is no number");
}

#[test]
fn text_lines_escapes_and_empty_values() {
    let out = transform(&sample("linuxforhealth-hl7v2-fhir-converter/ORU-multiline.hl7"));
    let texts = column(&out, "observation", "value_text");
    assert_eq!(texts.len(), 529);
    assert!(texts.iter().any(|t| t.contains('|')), "\\F\\ decodes to the field separator");
    assert!(texts.iter().any(|t| t.contains('&')), "\\T\\ decodes to the subcomponent separator");
    assert!(texts.iter().any(|t| t.contains("60\" (152.4 cm)")), "an unescaped quote is text");
    assert!(texts.iter().any(|t| t == "-"), "an empty OBX-5 is NULL");

    let body = b"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|E1|P|2.5\rPID|1||P1\rOBX|1|FT|C^Note||one\\.br\\two \\H\\bold\\N\\ caf\\XC3A9\\ \\E\\ end||||||F\r";
    assert_eq!(column(&transform(body), "observation", "value_text"), strings(&["one\ntwo bold café \\ end"]));
}

#[test]
fn explicit_nulls_blank_fields_and_leading_spaces_are_read_as_the_standard_says() {
    let out = transform(&sample("python-hl7/sample_msh.hl7"));
    // PV1 fields sent as "" are NULL; ` 863968` style values are trimmed.
    assert_eq!(column(&out, "encounter", "encounter_id"), strings(&["01"]));
    assert_eq!(column(&out, "patient", "family_name"), strings(&["RUFUSS"]));
    assert_eq!(column(&out, "patient", "birth_date"), strings(&["1952-11-29"]));
    assert_eq!(column(&out, "condition", "code_display"), strings(&["ATHEROSCLEROSIS W/INT CLAUDCTN"]));
}

#[test]
fn partial_times_keep_their_precision_and_the_zone_setting_reads_local_times() {
    let body = b"MSH|^~\\&|A|B|C|D|202108||ADT^A04|T1|P|2.5\rPID|1||P1||DOE^J||1962|F\rPV1|1|O|||||||||||||||||V1|||||||||||||||||||||||||202108171519|20210817151943.25\r";
    let out = transform(body);
    assert_eq!(column(&out, "message", "message_time"), strings(&["2021-08-01T00:00:00Z"]));
    assert_eq!(column(&out, "message", "message_time_precision"), strings(&["month"]));
    assert_eq!(column(&out, "patient", "birth_date"), strings(&["1962-01-01"]));
    assert_eq!(column(&out, "patient", "birth_date_precision"), strings(&["year"]));
    assert_eq!(column(&out, "encounter", "start_time_precision"), strings(&["minute"]));
    assert_eq!(column(&out, "encounter", "end_time"), strings(&["2021-08-17T15:19:43.250Z"]));
    assert_eq!(column(&out, "encounter", "end_time_precision"), strings(&["fraction"]));

    let berlin = transform_with(&[("timezone", "Europe/Berlin")], body);
    assert_eq!(column(&berlin, "encounter", "start_time"), strings(&["2021-08-17T13:19:00Z"]), "CEST is UTC+2");
    // A value with an offset is the same instant whatever the setting.
    let offset = b"MSH|^~\\&|A|B|C|D|20210817151943+0200||ADT^A04|T1|P|2.5\rPID|1||P1\r";
    assert_eq!(
        column(&transform_with(&[("timezone", "America/New_York")], offset), "message", "message_time"),
        strings(&["2021-08-17T13:19:43Z"])
    );
    let given: Vec<(String, String)> = vec![("timezone".into(), "Mars/Olympus".into())];
    let refused = Hl7v2::configure(&Settings::new(&Hl7v2::manifest().settings, &given).unwrap()).unwrap_err();
    assert_eq!(refused, "setting `timezone` must be an IANA time zone name such as Europe/Berlin or UTC");
}

#[test]
fn custom_encoding_characters_and_latin1_are_read() {
    let body = b"MSH#$*!@#A#B#C#D#20240101##ADT$A01#E1#P#2.5######8859/1\rPID#1##P1$$$HOSP*P2##M\xFCLLER$J\xD6RG##19700101#F\r";
    let out = transform(body);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(column(&out, "patient", "identifier_system"), strings(&["HOSP"]));
    assert_eq!(column(&out, "patient", "family_name"), strings(&["MüLLER"]));
    assert_eq!(column(&out, "patient", "given_name"), strings(&["JÖRG"]));
}

#[test]
fn split_gives_one_canonical_record_per_message_keyed_by_patient_with_its_control_id() {
    let body = sample("python-hl7/sample_batch2.hl7");
    let out = split(&body);
    assert_eq!(out.content_type, CONTENT_TYPE);
    assert_eq!(out.origins.len(), 2);
    assert_eq!(out.origins[0].key.as_deref(), Some("0000112234"));
    assert_eq!(out.origins[1].id.as_deref(), Some("|ABCHS|12334456778891"), "MSH-3|MSH-4|MSH-10");
    assert_eq!((out.origins[0].record, out.origins[1].record), (0, 1));
    let records: Vec<&[u8]> = out.records().collect();
    assert!(records[0].starts_with(b"MSH|") && records[0].ends_with(b"\r") && !records[0].contains(&b'\n'));
    // transform reads canonical records to the same rows as the body.
    let mut canonical = OwnedBatch::new(CONTENT_TYPE);
    for record in &records {
        canonical.push(record);
    }
    let from_records = plugin(&[]).transform(&canonical.as_batch());
    assert_eq!(rows(&from_records, "patient"), rows(&transform(&body), "patient"));
    assert_eq!(from_records.table("patient").unwrap().inputs, vec![0, 1]);
}

#[test]
fn a_bad_message_is_rejected_alone_with_its_field() {
    let good = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|G1|P|2.5\rPID|1||P1\r";
    let cases: &[(&str, &str, &str)] = &[
        (
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.2\rPID|1||P1\r",
            "MSH-12",
            "MSH-12 names an HL7 version this plugin does not read (2.3 to 2.8)",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|3.0\rPID|1||P1\r",
            "MSH-12",
            "MSH-12 names an HL7 version this plugin does not read (2.3 to 2.8)",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.5.1.1\rPID|1||P1\r",
            "MSH-12",
            "MSH-12 names an HL7 version this plugin does not read (2.3 to 2.8)",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.05\rPID|1||P1\r",
            "MSH-12",
            "MSH-12 names an HL7 version this plugin does not read (2.3 to 2.8)",
        ),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01||P|2.5\rPID|1||P1\r", "MSH-10", "MSH-10 (message control id) is empty"),
        ("MSH|^~\\&|A|B|C|D|20240101|||B1|P|2.5\r", "MSH-9", "MSH-9 (message type) is empty"),
        (
            "MSH|^~\\&|A|B|C|D|2024-01-01||ADT^A01|B1|P|2.5\rPID|1||P1\r",
            "MSH-7",
            "MSH-7 is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])",
        ),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.5\rPV1|1|I\r", "PID", "ADT^A01 needs a PID segment"),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.5\rPID|1||^^^HOSP\r",
            "PID-3",
            "PID-3 (patient identifier list) has no identifier",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|B1|P|2.5\rPID|1||P1\rOBX|1|NM|X||7\rOBX|2|NM|X||7\rOBX|3|NM|X||high\r",
            "OBX[3]-5",
            "OBX[3]-5 is not a number (OBX-2 is NM)",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|B1|P|2.5\rPID|1||P1\rOBX|1|ST|X||7||||||F|||2024130\r",
            "OBX[1]-14",
            "OBX[1]-14 is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|B1|P|2.5\rPID|1||P1\rPID|2||^^^HOSP\rOBX|1|NM|X||7\r",
            "PID[2]-3",
            "PID[2]-3 (patient identifier list) has no identifier",
        ),
        (
            // A line that starts no segment, after a break of the kind the message's segments
            // end with: it would be lost.
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|B1|P|2.5\rPID|1||P1\rOBX|1|TX|X||note\rsecond line\r",
            "MSH",
            "line 4 of the message is not a segment (a segment starts with its three-character id, such as OBX, and \
             the field separator): a line break inside a field must be sent escaped, as \\.br\\",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|B1|P|2.5\rPID|1||P1\rOBX|1|TS|X||2012x\r",
            "OBX[1]-5",
            "OBX[1]-5 is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|B1|P|2.5\rPID|1||P1\rOBX|1|SN|X||^abc\r",
            "OBX[1]-5",
            "OBX[1]-5 is not a structured numeric (OBX-2 is SN: comparator^number^separator^number)",
        ),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.5\rPID|1||P1||DOE\x00^JOHN\r",
            "PID",
            "segment PID holds a NUL byte (0x00), which HL7 v2 text may not hold",
        ),
        (
            "MSHA^~\\&|A\rPID|1||P1\r",
            "MSH-1",
            "MSH-1 field separator 'A' cannot be used (it must be printable ASCII punctuation)",
        ),
        (
            "MSH|^~|A\r",
            "MSH-2",
            "MSH-2 encoding characters must be 4 (component, repetition, escape, subcomponent), found 2",
        ),
    ];
    for (bad, field, reason) in cases {
        let body = format!("{good}{bad}{}", good.replace("G1", "G2"));
        let out = transform(body.as_bytes());
        assert_eq!(column(&out, "message", "message_control_id"), strings(&["G1", "G2"]), "{bad}");
        assert_eq!(out.rejected.len(), 1, "{bad}");
        let rejection = &out.rejected[0];
        assert_eq!(
            (rejection.record, rejection.field.as_deref(), rejection.reason.as_str()),
            (1, Some(*field), *reason),
            "{bad}"
        );
        let split = split(body.as_bytes());
        assert_eq!(split.origins.len(), 2, "split refuses what transform would: {bad}");
        assert_eq!(split.rejected, out.rejected, "{bad}");
    }
}

#[test]
fn invalid_utf8_and_unknown_charsets_are_rejected_naming_msh_18() {
    let out = transform(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.5\rPID|1||P1||M\xFCller\r");
    assert_eq!(out.rejected[0].field.as_deref(), Some("MSH-18"));
    assert_eq!(
        out.rejected[0].reason,
        "the message is not valid UTF-8; send UTF-8, or declare 8859/1 in MSH-18 for Latin-1"
    );
    let other = transform(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.5||||||ISO IR87\rPID|1||P1\r");
    assert_eq!(
        other.rejected[0].reason,
        "MSH-18 names a character set this plugin does not read (it reads ASCII, UNICODE UTF-8 and 8859/1)"
    );
}

#[test]
fn the_message_types_setting_refuses_types_the_source_does_not_take() {
    let body = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|B1|P|2.5\rPID|1||P1\rMSH|^~\\&|A|B|C|D|20240101||ORU^R01|B2|P|2.5\rPID|1||P1\r";
    let out = transform_with(&[("message-types", "ADT")], body);
    assert_eq!(column(&out, "message", "message_control_id"), strings(&["B1"]));
    assert_eq!(out.rejected[0].field.as_deref(), Some("MSH-9"));
    assert_eq!(out.rejected[0].reason, "MSH-9 message type is not one this source takes (setting message-types)");
    let both = transform_with(&[("message-types", "adt, ORU^R01")], body);
    assert_eq!(column(&both, "message", "message_control_id"), strings(&["B1", "B2"]));
}

#[test]
fn the_identifier_its_authority_and_its_type_come_from_one_repetition_of_pid_3() {
    let body = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|R1|P|2.5\rPID|1||^^^X^Y~A4^^^HOSP^MR\r\
                 MSH|^~\\&|A|B|C|D|20240101||ADT^A01|R2|P|2.5\rPID|1||^^^X^Y~A3^^^HOSP\r";
    let out = transform(body);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(column(&out, "patient", "patient_id"), strings(&["A4", "A3"]));
    assert_eq!(column(&out, "patient", "identifier_system"), strings(&["HOSP", "HOSP"]));
    assert_eq!(column(&out, "patient", "identifier_type"), strings(&["MR", "-"]), "not the empty repetition's Y");
}

#[test]
fn each_patient_group_of_a_message_gets_its_own_rows() {
    // An ORU^R01 reporting on two patients (its PATIENT_RESULT group repeated), as the standard
    // allows: each OBX belongs to the PID (and PV1) before it.
    let body = "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101||ORU^R01|M1|P|2.5\r\
                PID|1||PAT-A||ALPHA^ANN\rPV1|1|I|||||||||||||||||VIS-A\rOBR|1||ORD-A\rOBX|1|NM|2823-3^K||4.1|mmol/L\r\
                PID|2||PAT-B||BETA^BEN\rPV1|1|E|||||||||||||||||VIS-B\rOBR|1||ORD-B\rOBX|1|NM|2823-3^K||6.8|mmol/L|||HH\r";
    let out = transform(body.as_bytes());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(column(&out, "patient", "patient_id"), strings(&["PAT-A", "PAT-B"]));
    assert_eq!(column(&out, "patient", "family_name"), strings(&["ALPHA", "BETA"]));
    assert_eq!(column(&out, "encounter", "encounter_id"), strings(&["VIS-A", "VIS-B"]));
    assert_eq!(column(&out, "encounter", "patient_id"), strings(&["PAT-A", "PAT-B"]));
    assert_eq!(column(&out, "observation", "patient_id"), strings(&["PAT-A", "PAT-B"]));
    assert_eq!(column(&out, "observation", "encounter_id"), strings(&["VIS-A", "VIS-B"]));
    assert_eq!(column(&out, "observation", "order_id"), strings(&["ORD-A", "ORD-B"]));
    assert_eq!(column(&out, "observation", "value_numeric"), strings(&["4.1", "6.8"]));
    assert_eq!(column(&out, "observation", "observation_id"), strings(&["M1-OBX-1", "M1-OBX-2"]));
    // The message row (and the record's partition key) names the first patient.
    assert_eq!(column(&out, "message", "patient_id"), strings(&["PAT-A"]));
    // A bad value in the second group names that group's segment.
    let bad = body.replace("PID|2||PAT-B||BETA^BEN", "PID|2||PAT-B||BETA^BEN||1980-01-01");
    let refused = transform(bad.as_bytes());
    assert_eq!(refused.rejected[0].field.as_deref(), Some("PID[2]-7"));
    assert!(refused.tables.is_empty(), "a refused message writes no row");
}

#[test]
fn a_line_break_inside_a_field_stays_in_the_field() {
    // Segments end with CR; the note's lines are separated by LF, as some systems send them.
    let body = "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|N1|P|2.5\rPID|1||P1\r\
                OBX|1|TX|NOTE||Patient stable.\nSecond line of note.||||||F|||20240102\r\
                OBX|2|NM|GLU||90|mg/dL|70-110\n|H|||F\r";
    let out = transform(body.as_bytes());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(column(&out, "observation", "value_text"), strings(&["Patient stable.\nSecond line of note.", "90"]));
    assert_eq!(column(&out, "observation", "status"), strings(&["F", "F"]));
    assert_eq!(column(&out, "observation", "effective_time"), strings(&["2024-01-02T00:00:00Z", "-"]));
    assert_eq!(column(&out, "observation", "reference_range"), strings(&["-", "70-110"]));
    assert_eq!(column(&out, "observation", "interpretation"), strings(&["-", "H"]));
    // The same with CRLF terminators and a lone CR inside the field: kept, as a line break.
    let crlf = body.replace('\r', "\r\n").replace("stable.\r\n\nSecond", "stable.\rSecond");
    let crlf = crlf.replace("stable.\nSecond", "stable.\rSecond");
    let out = transform(crlf.as_bytes());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(column(&out, "observation", "value_text")[0], "Patient stable.\nSecond line of note.");
    // A DOS end-of-file mark after the last segment is no line of the message.
    let out = transform(format!("{body}\x1a").as_bytes());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
}

#[test]
fn only_numeric_value_types_fill_value_numeric() {
    let body = "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|V1|P|2.5\rPID|1||P1\r\
                OBX|1|CE|X||260385009\rOBX|2|DT|X||20120615\rOBX|3|ST|X||7\rOBX|4|NM|X||7.5\rOBX|5||X||12\r\
                OBX|6|SN|X||^182\r";
    let out = transform(body.as_bytes());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(column(&out, "observation", "value_numeric"), strings(&["-", "-", "-", "7.5", "12", "182"]));
    assert_eq!(column(&out, "observation", "value_text")[..3], strings(&["260385009", "20120615", "7"]));
}

#[test]
fn rows_of_two_senders_with_one_control_id_are_told_apart() {
    let message = |facility: &str| {
        format!("MSH|^~\\&|LAB|{facility}|EHR|X|20240101||ORU^R01|DUP5|P|2.5\rPID|1||P1\rOBX|1|NM|X||7\r")
    };
    let out = transform(format!("{}{}", message("HOSP"), message("HOSP2")).as_bytes());
    assert_eq!(column(&out, "observation", "source_message_id"), strings(&["DUP5", "DUP5"]));
    assert_eq!(column(&out, "observation", "sending_facility"), strings(&["HOSP", "HOSP2"]));
    assert_eq!(column(&out, "patient", "sending_application"), strings(&["LAB", "LAB"]));
}

#[test]
fn a_batch_whose_trailer_counts_otherwise_or_is_missing_is_refused_whole() {
    let message = |id: &str| format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|{id}|P|2.5\rPID|1||P1\r");
    let batch = |trailer: &str| format!("BHS|^~\\&\r{}{}{trailer}", message("T1"), message("T2"));
    // Counted right, or not counted: both messages taken.
    for whole in [batch("BTS|2\r"), batch("BTS\r"), format!("FHS|^~\\&\r{}FTS|1\r", batch("BTS|2\r"))] {
        let out = transform(whole.as_bytes());
        assert!(out.rejected.is_empty(), "{whole}: {:?}", out.rejected);
        assert_eq!(column(&out, "message", "message_control_id"), strings(&["T1", "T2"]));
    }
    let refused = |body: String| {
        let out = transform(body.as_bytes());
        assert!(out.tables.is_empty(), "nothing of a refused batch is stored: {body}");
        out.rejected.into_iter().map(|r| (r.field.unwrap_or_default(), r.reason)).collect::<Vec<_>>()
    };
    let miscounted = refused(batch("BTS|5\r"));
    assert_eq!(miscounted.len(), 2);
    assert_eq!(
        miscounted[0],
        (
            "BTS-1".to_string(),
            "the batch trailer BTS-1 counts 5 message(s), the batch holds 2: the body may be cut short or spliced; \
             none of the batch was stored, send it whole"
                .to_string()
        )
    );
    // Cut short: the trailer (and maybe segments of the last message) lost.
    let cut = refused(batch(""));
    assert_eq!(cut[1].0, "BTS");
    assert!(cut[1].1.starts_with("the batch (BHS) has no trailer (BTS): the body may be cut short"), "{cut:?}");
    let file = refused(format!("FHS|^~\\&\r{}", batch("BTS|2\r")));
    assert_eq!(file[0].0, "FTS");
    let batches = refused(format!("FHS|^~\\&\r{}FTS|2\r", batch("BTS|2\r")));
    assert_eq!(batches[0].0, "FTS-1");
    // A batch that holds no message but says it does: refused, not taken without a word.
    let empty = refused("BHS|^~\\&\rBTS|3\r".to_string());
    assert_eq!(empty[0].0, "BTS-1");
}
