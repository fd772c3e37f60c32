//! Traps when a batch holds a record containing `POISON`, rejects records containing `REJECT`,
//! (unless configured `lenient = true`, the "plugin fix" of the replay test), says nothing of
//! records containing `SKIP` (neither a row nor a rejection: a defect the host must catch) and
//! writes every other record as one row: the stream core must retry a trapped batch record
//! by record, so that only the poison record goes to the dead-letter queue.
#![allow(missing_docs)]

use sluice_plugin_sdk::{
    Batch, Column, ColumnType, Manifest, Origin, Output, Plugin, Rejection, Setting, Settings, SplitOutput,
    TableBuilder, TableSchema, Value,
};

pub struct Poison {
    lenient: bool,
}

fn table() -> TableSchema {
    TableSchema {
        name: "events".into(),
        doc: "One row per record.".into(),
        columns: vec![Column::new("value", ColumnType::String, "The record as received.")],
    }
}

impl Plugin for Poison {
    fn manifest() -> Manifest {
        Manifest {
            name: "poison".into(),
            version: "0.1.0".into(),
            doc: "A test plugin that traps on poison records.".into(),
            content_types: vec!["application/json".into()],
            settings: vec![Setting::new(
                "lenient",
                Some("false"),
                "`true`: write REJECT records instead of rejecting them.",
            )],
            tables: vec![table()],
        }
    }

    fn configure(settings: &Settings) -> Result<Self, String> {
        Ok(Self { lenient: settings.flag("lenient")? })
    }

    /// Every non-empty line is a record; all share one key, so they stay in one log partition
    /// in order and reach `transform` together.
    fn split(&self, batch: &Batch<'_>) -> SplitOutput {
        let mut out = SplitOutput::new("application/json");
        for (input, payload) in batch.payloads() {
            let lines = payload.split(|b| *b == b'\n').filter(|line| !line.is_empty());
            for (record, line) in lines.enumerate() {
                out.push(line, Origin { input, record: record as u32, key: Some("poison".into()), id: None });
            }
        }
        out
    }

    fn transform(&self, batch: &Batch<'_>) -> Output {
        let contains = |payload: &[u8], word: &[u8]| payload.windows(word.len()).any(|w| w == word);
        let mut rows = TableBuilder::new(&table());
        let mut rejected = Vec::new();
        for (input, payload) in batch.payloads() {
            if contains(payload, b"POISON") {
                panic!("poison record");
            }
            if contains(payload, b"SKIP") {
                continue;
            }
            if contains(payload, b"REJECT") && !self.lenient {
                let reason = "the record is marked REJECT".into();
                rejected.push(Rejection { input, record: 0, reason, field: Some("value".into()) });
                continue;
            }
            rows.push_row(input, &[Value::String(std::str::from_utf8(payload).unwrap_or("?"))]);
        }
        Output { tables: vec![rows], rejected }
    }
}

sluice_plugin_sdk::export_plugin!(Poison);
