//! `hl7v2`: HL7 v2 messages (ADT admissions, transfers, discharges and registrations; ORU lab
//! results) into the clinical tables `patient`, `encounter`, `observation` and `condition`, and
//! every message into `message`.
//!
//! A body holds one or many messages (segments ended by CR, LF or CRLF; batch envelopes
//! skipped); each message is one record, rejected alone with the reason and the field at fault
//! when it cannot be used. The canonical record is the message as UTF-8 with CR terminators; its
//! partition key is the patient id (PID-3) and its id the control id (MSH-10), so a resent
//! message is stored once. docs/hl7v2.md documents every column and rule.

mod body;
mod er7;
mod map;
mod tables;
#[cfg(test)]
mod tests;
mod time;

use chrono_tz::Tz;
use sluice_plugin_sdk::{
    Batch, Manifest, Origin, Output, Plugin, Rejection, Setting, Settings, SplitOutput, TableBuilder, export_plugin,
};

pub use body::Found;
pub use map::{Cell, Refusal, Rows};

/// The content type of canonical records (and the one senders use).
pub const CONTENT_TYPE: &str = "application/hl7-v2";

/// The hl7v2 plugin, configured.
#[derive(Debug)]
pub struct Hl7v2 {
    rules: map::Rules,
}

/// A message of a body: its decoded lines (the canonical text on demand: `split` needs it,
/// `transform` does not) and rows, or why it cannot be used.
pub type Mapped = Result<(Found, Rows), Refusal>;

impl Hl7v2 {
    /// Every message of one payload as a sender sent it (each in the character set its MSH-18
    /// names), mapped.
    pub fn messages(&self, payload: &[u8]) -> Vec<Mapped> {
        self.mapped(payload, body::Text::AsDeclared)
    }

    /// Every message of one payload whose bytes are `text`, mapped.
    fn mapped(&self, payload: &[u8], text: body::Text) -> Vec<Mapped> {
        body::messages(payload, text)
            .into_iter()
            .map(|found| {
                let found = found.map_err(|e| Refusal { reason: e.reason, field: e.field.to_string() })?;
                let lines: Vec<&str> = found.lines.iter().map(String::as_str).collect();
                let message = er7::Message::parse(&lines)
                    .map_err(|(reason, field)| Refusal { reason, field: field.to_string() })?;
                let rows = map::map(&message, &self.rules)?;
                Ok((found, rows))
            })
            .collect()
    }
}

impl Plugin for Hl7v2 {
    fn manifest() -> Manifest {
        Manifest {
            name: "hl7v2".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            doc: "HL7 v2 messages (ADT, ORU; versions 2.3 to 2.8) into the clinical tables patient, encounter, \
                  observation and condition, and every message into message."
                .into(),
            content_types: vec![CONTENT_TYPE.into(), "x-application/hl7-v2+er7".into()],
            settings: vec![
                Setting {
                    name: "timezone".into(),
                    doc: "IANA time zone (e.g. Europe/Berlin) of date/time values sent without an offset; values \
                          with an offset are instants whatever this says."
                        .into(),
                    default: Some("UTC".into()),
                },
                Setting {
                    name: "message-types".into(),
                    doc: "Comma-separated message types this source takes (ADT, ORU^R01); empty takes every type. \
                          Others are rejected naming MSH-9."
                        .into(),
                    default: Some(String::new()),
                },
            ],
            tables: tables::schemas(),
        }
    }

    fn configure(settings: &Settings) -> Result<Self, String> {
        let zone_name = settings.get("timezone").unwrap_or("UTC").trim();
        let zone: Tz = zone_name.parse().map_err(|_| {
            "setting `timezone` must be an IANA time zone name such as Europe/Berlin or UTC".to_string()
        })?;
        let message_types = settings
            .get("message-types")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Self { rules: map::Rules { zone, message_types } })
    }

    fn split(&self, batch: &Batch<'_>) -> SplitOutput {
        let mut out = SplitOutput::new(CONTENT_TYPE);
        for (input, payload) in batch.payloads() {
            for (record, mapped) in self.messages(payload).into_iter().enumerate() {
                let record = record as u32;
                match mapped {
                    Ok((found, rows)) => out.push(
                        found.canonical().as_bytes(),
                        Origin { input, record, key: rows.patient_id, id: Some(rows.message_id) },
                    ),
                    Err(refusal) => out.rejected.push(rejection(input, record, refusal)),
                }
            }
        }
        out
    }

    fn transform(&self, batch: &Batch<'_>) -> Output {
        let schemas = tables::schemas();
        let mut builders: Vec<TableBuilder> = schemas.iter().map(TableBuilder::new).collect();
        let mut rejected = Vec::new();
        for (input, payload) in batch.payloads() {
            // Canonical records: `split` decoded them to UTF-8.
            for (record, mapped) in self.mapped(payload, body::Text::Utf8).into_iter().enumerate() {
                match mapped {
                    Ok((_, rows)) => {
                        let push = |builder: &mut TableBuilder, row: &[Cell]| {
                            let values: Vec<_> = row.iter().map(Cell::value).collect();
                            builder.push_row(input, &values);
                        };
                        push(&mut builders[tables::MESSAGE], &rows.message);
                        for (table, list) in [
                            (tables::PATIENT, &rows.patient),
                            (tables::ENCOUNTER, &rows.encounter),
                            (tables::OBSERVATION, &rows.observation),
                            (tables::CONDITION, &rows.condition),
                        ] {
                            for row in list {
                                push(&mut builders[table], row);
                            }
                        }
                    }
                    Err(refusal) => rejected.push(rejection(input, record as u32, refusal)),
                }
            }
        }
        Output { tables: builders.into_iter().filter(|b| !b.is_empty()).collect(), rejected }
    }
}

fn rejection(input: u32, record: u32, refusal: Refusal) -> Rejection {
    Rejection { input, record, reason: refusal.reason, field: Some(refusal.field) }
}

export_plugin!(Hl7v2);
