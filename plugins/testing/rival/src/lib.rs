//! Writes the table `events` that the poison and hostile test plugins write too, but with
//! `value` as an integer: a shape the others' rows cannot share, so that a host refuses the
//! one loaded second instead of letting the first writer's rows decide. It also declares a
//! table `patients` whose `patientid` is an integer (the bundled `patients` plugin's is text),
//! which it never writes: a bundled plugin steps aside for it.
#![allow(missing_docs)]

use sluice_plugin_sdk::{
    Batch, Column, ColumnType, Manifest, Origin, Output, Plugin, Settings, SplitOutput, TableBuilder, TableSchema,
    Value, export_plugin,
};

pub struct Rival;

impl Plugin for Rival {
    fn manifest() -> Manifest {
        Manifest {
            name: "rival".into(),
            version: "0.1.0".into(),
            doc: "Writes each payload's length into `events`.".into(),
            content_types: vec!["text/plain".into()],
            settings: Vec::new(),
            tables: vec![
                TableSchema {
                    name: "events".into(),
                    doc: "One row per payload.".into(),
                    columns: vec![Column::new("value", ColumnType::Int64, "The payload's length in bytes.")],
                },
                TableSchema {
                    name: "patients".into(),
                    doc: "Never written.".into(),
                    columns: vec![Column::new("patientid", ColumnType::Int64, "A number.").required()],
                },
            ],
        }
    }
    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
    fn split(&self, batch: &Batch<'_>) -> SplitOutput {
        let mut out = SplitOutput::new("text/plain");
        for (input, payload) in batch.payloads() {
            out.push(payload, Origin { input, record: 0, key: None, id: None });
        }
        out
    }
    fn transform(&self, batch: &Batch<'_>) -> Output {
        let mut table = TableBuilder::new(&Self::manifest().tables[0]);
        for (input, payload) in batch.payloads() {
            table.push_row(input, &[Value::Int64(payload.len() as i64)]);
        }
        Output { tables: vec![table], rejected: Vec::new() }
    }
}

export_plugin!(Rival);
