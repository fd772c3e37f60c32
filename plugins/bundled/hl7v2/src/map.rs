//! One HL7 v2 message into rows of the clinical tables, following the HL7 v2-to-FHIR mapping
//! guide: PID → `patient`, PV1 → `encounter`, OBX → `observation`, DG1 → `condition`, and MSH
//! → `message` for every message.

use chrono_tz::Tz;
use sluice_plugin_sdk::Value;

use crate::er7::{Fields, Message};
use crate::time::{self, DateTimeValue};

/// Why a message cannot be used: the reason and the segment/field (`PID-7`, `OBX[3]-5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong, never quoting contents.
    pub reason: String,
    /// Where.
    pub field: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> Refusal {
    Refusal { reason: reason.into(), field: field.into() }
}

/// How the source reads messages (its settings).
#[derive(Debug, Clone)]
pub struct Rules {
    /// Zone of date/time values sent without an offset.
    pub zone: Tz,
    /// Message types taken (`ADT`, `ADT^A01`); empty takes all.
    pub message_types: Vec<String>,
}

/// Trigger events whose content is mapped to the clinical tables. Others are kept in `message`.
const MAPPED: &[(&str, &str)] = &[
    ("ADT", "A01"),
    ("ADT", "A02"),
    ("ADT", "A03"),
    ("ADT", "A04"),
    ("ADT", "A08"),
    ("ADT", "A11"),
    ("ADT", "A13"),
    ("ORU", "R01"),
];

/// The rows of one message, each a list of cells in its table's column order (see
/// [`crate::tables`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Control id (MSH-10).
    pub control_id: String,
    /// The message's id as the record's own id: MSH-3 (sending application), MSH-4 (sending
    /// facility) and MSH-10, joined by `|` (a control id is unique only within its sender).
    pub message_id: String,
    /// Patient id (PID-3), the partition key.
    pub patient_id: Option<String>,
    /// One `message` row.
    pub message: Vec<Cell>,
    /// `patient` rows (zero or one).
    pub patient: Vec<Vec<Cell>>,
    /// `encounter` rows (zero or one).
    pub encounter: Vec<Vec<Cell>>,
    /// `observation` rows.
    pub observation: Vec<Vec<Cell>>,
    /// `condition` rows.
    pub condition: Vec<Vec<Cell>>,
}

/// One owned cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// Text.
    Text(String),
    /// A double.
    Number(f64),
    /// A boolean.
    Flag(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 UTC.
    Instant(i64),
}

impl Cell {
    /// The SDK value, borrowing text.
    pub fn value(&self) -> Value<'_> {
        match self {
            Self::Null => Value::Null,
            Self::Text(s) => Value::String(s),
            Self::Number(f) => Value::Float64(*f),
            Self::Flag(b) => Value::Boolean(*b),
            Self::Date(d) => Value::Date(*d),
            Self::Instant(t) => Value::Instant(*t),
        }
    }
}

fn text(value: Option<String>) -> Cell {
    value.map_or(Cell::Null, Cell::Text)
}

/// An instant and its precision, or NULLs; a value that is not a date/time refuses the message.
fn instant(value: Option<String>, field: &str, zone: Tz) -> Result<[Cell; 2], Refusal> {
    match value {
        None => Ok([Cell::Null, Cell::Null]),
        Some(raw) => {
            let parsed = time::parse(&raw).map_err(|reason| refuse(field, format!("{field} {reason}")))?;
            Ok([Cell::Instant(parsed.instant(zone)), Cell::Text(parsed.precision.name().into())])
        }
    }
}

/// Maps one parsed message.
pub fn map(message: &Message<'_>, rules: &Rules) -> Result<Rows, Refusal> {
    let msh = message.read(&message.segments[0]);
    let message_type = msh.get(9, 1).ok_or_else(|| refuse("MSH-9", "MSH-9 (message type) is empty"))?;
    let trigger = msh.get(9, 2);
    let control_id = msh.get(10, 1).ok_or_else(|| refuse("MSH-10", "MSH-10 (message control id) is empty"))?;
    let version = msh.get(12, 1).ok_or_else(|| refuse("MSH-12", "MSH-12 (version) is empty"))?;
    if !supported_version(&version) {
        return Err(refuse("MSH-12", "MSH-12 names an HL7 version this plugin does not read (2.3 to 2.8)"));
    }
    let full_type = match &trigger {
        Some(t) => format!("{message_type}^{t}"),
        None => message_type.clone(),
    };
    if !rules.message_types.is_empty()
        && !rules
            .message_types
            .iter()
            .any(|taken| taken.eq_ignore_ascii_case(&message_type) || taken.eq_ignore_ascii_case(&full_type))
    {
        return Err(refuse("MSH-9", "MSH-9 message type is not one this source takes (setting message-types)"));
    }
    let mapped = trigger
        .as_deref()
        .is_some_and(|t| MAPPED.iter().any(|(m, e)| message_type.eq_ignore_ascii_case(m) && t.eq_ignore_ascii_case(e)));
    let zone = rules.zone;

    let patient_id = message.first("PID").map(|s| message.read(s)).as_ref().and_then(patient_identifier);
    let [message_time, message_time_precision] = instant(msh.get(7, 1), "MSH-7", zone)?;
    let message_row = vec![
        Cell::Text(control_id.clone()),
        Cell::Text(message_type.clone()),
        text(trigger.clone()),
        text(msh.get(9, 3)),
        text(msh.get(3, 1)),
        text(msh.get(4, 1)),
        text(msh.get(5, 1)),
        text(msh.get(6, 1)),
        message_time,
        message_time_precision,
        Cell::Text(version),
        text(msh.get(11, 1)),
        text(patient_id.as_ref().map(|identifier| identifier.id.clone())),
        Cell::Flag(mapped),
    ];
    let mut rows = Rows {
        control_id: control_id.clone(),
        message_id: format!("{}|{}|{control_id}", msh.get(3, 1).unwrap_or_default(), msh.get(4, 1).unwrap_or_default()),
        patient_id: patient_id.as_ref().map(|identifier| identifier.id.clone()),
        message: message_row,
        ..Rows::default()
    };
    if !mapped {
        return Ok(rows);
    }
    let pid_at: Vec<usize> = (0..message.segments.len()).filter(|&i| message.segments[i].name == "PID").collect();
    if pid_at.is_empty() {
        return Err(refuse("PID", format!("{full_type} needs a PID segment")));
    }
    let sender = Sender { application: msh.get(3, 1), facility: msh.get(4, 1) };
    let (mut obx_count, mut dg1_count, mut pv1_count) = (0usize, 0usize, 0usize);
    // Each PID starts the group of one patient (an ORU^R01 may report on several): the
    // segments up to the next PID are that patient's; those before the first PID go with it.
    for (group, &at) in pid_at.iter().enumerate() {
        let start = if group == 0 { 1 } else { at };
        let end = pid_at.get(group + 1).copied().unwrap_or(message.segments.len());
        let segments = &message.segments[start..end];
        let pid_name = numbered("PID", group + 1);
        let pid = message.read(&message.segments[at]);
        let identifier = patient_identifier(&pid).ok_or_else(|| {
            refuse(format!("{pid_name}-3"), format!("{pid_name}-3 (patient identifier list) has no identifier"))
        })?;
        rows.patient.push(patient(&pid, &pid_name, &identifier, &control_id, &sender, zone)?);
        let patient_id = identifier.id;
        let pv1_at = segments.iter().position(|s| s.name == "PV1");
        let encounter_id = pv1_at.and_then(|i| message.read(&segments[i]).get(19, 1));
        let mut order: Option<String> = None;
        let mut order_time: Option<String> = None;
        let ids =
            Ids { patient: &patient_id, encounter: encounter_id.as_deref(), message: &control_id, sender: &sender };
        for (index, segment) in segments.iter().enumerate() {
            let fields = message.read(segment);
            match segment.name {
                "PV1" => {
                    pv1_count += 1;
                    // The group's first PV1 is its visit.
                    if pv1_at == Some(index) {
                        let name = numbered("PV1", pv1_count);
                        rows.encounter.push(encounter(&fields, &name, &ids, trigger.as_deref().unwrap_or(""), zone)?);
                    }
                }
                "OBR" => {
                    order = fields.get(3, 1).or_else(|| fields.get(2, 1));
                    order_time = fields.get(7, 1);
                }
                "ORC" => {
                    order = fields.get(3, 1).or_else(|| fields.get(2, 1));
                    order_time = None;
                }
                "OBX" => {
                    obx_count += 1;
                    rows.observation.push(observation(
                        &fields,
                        obx_count,
                        &ids,
                        order.as_deref(),
                        order_time.clone(),
                        zone,
                    )?);
                }
                "DG1" => {
                    dg1_count += 1;
                    rows.condition.push(condition(&fields, dg1_count, &ids, zone)?);
                }
                _ => {}
            }
        }
    }
    Ok(rows)
}

/// `PID` for the first segment of a name in a message, `PID[2]` for the second, ... (as
/// `OBX[3]` names the third OBX).
fn numbered(name: &str, ordinal: usize) -> String {
    if ordinal == 1 { name.to_string() } else { format!("{name}[{ordinal}]") }
}

/// Who sent a message (MSH-3.1, MSH-4.1): a control id is unique only within its sender, so
/// every row of the clinical tables carries it beside `source_message_id`.
struct Sender {
    application: Option<String>,
    facility: Option<String>,
}

impl Sender {
    /// The two cells every clinical row ends with.
    fn cells(&self) -> [Cell; 2] {
        [text(self.application.clone()), text(self.facility.clone())]
    }
}

/// Versions 2.3 to 2.8, with at most a patch number (`2.3`, `2.3.1`, `2.5.1`, `2.8.2`): HL7 has
/// published no version of four parts, so `2.5.1.1` is a sender's mistake, not a version.
fn supported_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    let number = |part: &str| !part.is_empty() && part.len() <= 2 && part.bytes().all(|b| b.is_ascii_digit());
    matches!(parts.len(), 2 | 3)
        && parts[0] == "2"
        && parts[1].len() == 1
        && (b'3'..=b'8').contains(&parts[1].as_bytes()[0])
        && parts[2..].iter().all(|part| number(part))
}

/// The patient's identifier: the first repetition of PID-3 that has an id, with its assigning
/// authority and its type, both of that same repetition.
struct Identifier {
    id: String,
    system: Option<String>,
    kind: Option<String>,
}

/// PID-3's first repetition with an ID.
fn patient_identifier(pid: &Fields<'_, '_>) -> Option<Identifier> {
    pid.repetitions(3).find_map(|repetition| {
        let id = pid.part(repetition, 1, 1)?;
        let system = pid.part(repetition, 4, 1).or_else(|| pid.part(repetition, 4, 2));
        Some(Identifier { id, system, kind: pid.part(repetition, 5, 1) })
    })
}

/// FHIR administrative-gender from HL7 table 0001.
fn gender(code: &str) -> &'static str {
    match code.to_ascii_uppercase().as_str() {
        "M" => "male",
        "F" => "female",
        "O" | "A" | "N" => "other",
        _ => "unknown",
    }
}

fn patient(
    pid: &Fields<'_, '_>,
    name: &str,
    identifier: &Identifier,
    control_id: &str,
    sender: &Sender,
    zone: Tz,
) -> Result<Vec<Cell>, Refusal> {
    let birth = match pid.get(7, 1) {
        None => None,
        Some(raw) => {
            Some(time::parse(&raw).map_err(|reason| refuse(format!("{name}-7"), format!("{name}-7 {reason}")))?)
        }
    };
    let [deceased_time, _] = instant(pid.get(29, 1), &format!("{name}-29"), zone)?;
    let [sender_application, sender_facility] = sender.cells();
    let deceased = match pid.get(30, 1).map(|v| v.to_ascii_uppercase()) {
        Some(flag) if flag == "Y" => Cell::Flag(true),
        Some(flag) if flag == "N" => Cell::Flag(false),
        _ if deceased_time != Cell::Null => Cell::Flag(true),
        _ => Cell::Null,
    };
    Ok(vec![
        Cell::Text(identifier.id.clone()),
        text(identifier.system.clone()),
        text(identifier.kind.clone()),
        text(pid.sub(5, 1, 1)),
        text(pid.get(5, 2)),
        birth.map_or(Cell::Null, |b: DateTimeValue| Cell::Date(b.days())),
        birth.map_or(Cell::Null, |b| Cell::Text(b.precision.name().into())),
        pid.get(8, 1).map_or(Cell::Null, |g| Cell::Text(gender(&g).into())),
        deceased,
        deceased_time,
        text(pid.get(16, 1)),
        text(pid.get(15, 1)),
        text(pid.get(11, 5)),
        Cell::Text(control_id.to_string()),
        sender_application,
        sender_facility,
    ])
}

/// FHIR Encounter.class (v3 ActCode) for the PV1-2 codes the mapping guide maps; others as sent.
fn encounter_class(code: String) -> String {
    match code.to_ascii_uppercase().as_str() {
        "E" => "EMER".into(),
        "I" => "IMP".into(),
        "O" => "AMB".into(),
        "P" => "PRENC".into(),
        _ => code,
    }
}

fn encounter(pv1: &Fields<'_, '_>, name: &str, ids: &Ids<'_>, trigger: &str, zone: Tz) -> Result<Vec<Cell>, Refusal> {
    let [start, start_precision] = instant(pv1.get(44, 1), &format!("{name}-44"), zone)?;
    let [end, end_precision] = instant(pv1.get(45, 1), &format!("{name}-45"), zone)?;
    let [sender_application, sender_facility] = ids.sender.cells();
    let status = match trigger.to_ascii_uppercase().as_str() {
        "A11" => "cancelled",
        "A03" => "finished",
        _ if end != Cell::Null => "finished",
        _ => "in-progress",
    };
    Ok(vec![
        text(pv1.get(19, 1)),
        Cell::Text(ids.patient.to_string()),
        text(pv1.get(2, 1).map(encounter_class)),
        Cell::Text(status.into()),
        start,
        start_precision,
        end,
        end_precision,
        text(pv1.components(3)),
        Cell::Text(ids.message.to_string()),
        sender_application,
        sender_facility,
    ])
}

/// The ids every row of a message's clinical content carries.
struct Ids<'a> {
    patient: &'a str,
    encounter: Option<&'a str>,
    message: &'a str,
    sender: &'a Sender,
}

fn observation(
    obx: &Fields<'_, '_>,
    index: usize,
    ids: &Ids<'_>,
    order: Option<&str>,
    order_time: Option<String>,
    zone: Tz,
) -> Result<Vec<Cell>, Refusal> {
    let at = |n: usize| format!("OBX[{index}]-{n}");
    let value_type = obx.get(2, 1).map(|t| t.to_ascii_uppercase());
    if value_type.as_deref() == Some("NM")
        && obx.repetitions(5).filter_map(|r| obx.text(r)).any(|value| number(&value).is_none())
    {
        return Err(refuse(at(5), format!("{} is not a number (OBX-2 is NM)", at(5))));
    }
    // A date/time or a structured numeric that is none is refused as an NM that is no number is.
    for value in obx.repetitions(5) {
        match value_type.as_deref() {
            Some("DT" | "DTM" | "TS") => {
                if let Some(raw) = obx.part(value, 1, 1) {
                    time::parse(&raw).map_err(|reason| refuse(at(5), format!("{} {reason}", at(5))))?;
                }
            }
            Some("SN") => {
                let numbers = [obx.part(value, 2, 1), obx.part(value, 4, 1)];
                if numbers.iter().flatten().any(|n| number(n).is_none()) {
                    return Err(refuse(
                        at(5),
                        format!(
                            "{} is not a structured numeric (OBX-2 is SN: comparator^number^separator^number)",
                            at(5)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    let value_text = value_text(obx, value_type.as_deref());
    // Only a numeric type is a number: a code (CWE `260385009`), a date (DT `20120615`) or a
    // string (ST `7`) that happens to be digits is not a quantity.
    let numeric = match value_type.as_deref() {
        None | Some("NM" | "SN") => value_text.as_deref().and_then(number),
        Some(_) => None,
    };
    let (effective, effective_field) = match obx.get(14, 1) {
        Some(time) => (Some(time), at(14)),
        None => (order_time, "OBR-7".to_string()),
    };
    let [effective_time, effective_precision] = instant(effective, &effective_field, zone)?;
    let [sender_application, sender_facility] = ids.sender.cells();
    Ok(vec![
        Cell::Text(format!("{}-OBX-{index}", ids.message)),
        Cell::Text(ids.patient.to_string()),
        text(ids.encounter.map(str::to_string)),
        text(order.map(str::to_string)),
        text(obx.get(11, 1)),
        text(obx.get(3, 1)),
        text(obx.get(3, 3)),
        text(obx.get(3, 2)),
        text(value_type),
        numeric.map_or(Cell::Null, Cell::Number),
        text(value_text),
        text(obx.get(6, 1).or_else(|| obx.get(6, 2))),
        text(obx.whole(7)),
        text(obx.get(8, 1)),
        effective_time,
        effective_precision,
        Cell::Text(ids.message.to_string()),
        sender_application,
        sender_facility,
    ])
}

/// OBX-5 as text: a structured numeric (SN) as its parts run together (`>`, `100`; `1`, `:`,
/// `2`); repetitions of text (TX, FT) on lines of their own, of other types joined by `~` as sent.
fn value_text(obx: &Fields<'_, '_>, value_type: Option<&str>) -> Option<String> {
    let repetitions: Vec<String> = obx
        .repetitions(5)
        .filter_map(|repetition| {
            if value_type == Some("SN") {
                let parts: String = (1..=4).filter_map(|c| obx.part(repetition, c, 1)).collect();
                return (!parts.is_empty()).then_some(parts);
            }
            obx.joined(repetition)
        })
        .collect();
    let separator = if matches!(value_type, Some("TX" | "FT")) { "\n" } else { "~" };
    (!repetitions.is_empty()).then(|| repetitions.join(separator))
}

/// A finite decimal number.
fn number(text: &str) -> Option<f64> {
    let looks_numeric = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+'));
    text.parse::<f64>().ok().filter(|f| looks_numeric && f.is_finite())
}

fn condition(dg1: &Fields<'_, '_>, index: usize, ids: &Ids<'_>, zone: Tz) -> Result<Vec<Cell>, Refusal> {
    let [recorded, recorded_precision] = instant(dg1.get(5, 1), &format!("DG1[{index}]-5"), zone)?;
    let [sender_application, sender_facility] = ids.sender.cells();
    Ok(vec![
        Cell::Text(format!("{}-DG1-{index}", ids.message)),
        Cell::Text(ids.patient.to_string()),
        text(ids.encounter.map(str::to_string)),
        text(dg1.get(3, 1)),
        text(dg1.get(3, 3)),
        text(dg1.get(3, 2).or_else(|| dg1.get(4, 1))),
        text(dg1.get(6, 1)),
        recorded,
        recorded_precision,
        Cell::Text(ids.message.to_string()),
        sender_application,
        sender_facility,
    ])
}
