// Shared body of swap-v1 and swap-v2; each defines `VERSION` first.

use sluice_plugin_sdk::{
    Batch, Column, ColumnType, Manifest, Output, Plugin, Settings, SplitOutput, TableBuilder, TableSchema, Value,
    export_plugin,
};

pub struct Swap;

impl Plugin for Swap {
    fn manifest() -> Manifest {
        Manifest {
            name: "swap".into(),
            version: VERSION.into(),
            doc: "Writes the version that handled each payload.".into(),
            content_types: vec!["text/plain".into()],
            settings: Vec::new(),
            tables: vec![TableSchema {
                name: "handled".into(),
                doc: "One row per payload.".into(),
                columns: vec![
                    Column::new("payload", ColumnType::String, "The payload.").required(),
                    Column::new("version", ColumnType::String, "Plugin version.").required(),
                ],
            }],
        }
    }
    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
    /// Each payload is one record (so the API accepts it, end to end).
    fn split(&self, batch: &Batch<'_>) -> SplitOutput {
        let mut out = SplitOutput::new("text/plain");
        for (input, payload) in batch.payloads() {
            out.push(payload, sluice_plugin_sdk::Origin { input, record: 0, key: None, id: None });
        }
        out
    }
    fn transform(&self, batch: &Batch<'_>) -> Output {
        let manifest = Self::manifest();
        let mut table = TableBuilder::new(&manifest.tables[0]);
        for (input, payload) in batch.payloads() {
            let text = std::str::from_utf8(payload).unwrap_or("<not utf-8>");
            table.push_row(input, &[Value::String(text), Value::String(VERSION)]);
        }
        Output { tables: vec![table], rejected: Vec::new() }
    }
}

export_plugin!(Swap);
