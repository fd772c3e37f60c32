// Shared by the hostile test plugins: a one-table manifest and the boilerplate of the `Plugin`
// trait, so each plugin is only its behaviour in `transform`.

/// Defines `$plugin` named `$name` whose `transform` runs `$body` (with the batch as `$batch`),
/// and exports it. `split` takes every non-empty line as one record (so the API accepts what
/// the hostile `transform` then gets, end to end), unless a `split` body is given as well.
macro_rules! hostile_plugin {
    ($plugin:ident, $name:literal, |$batch:ident| $body:block) => {
        hostile_plugin!($plugin, $name, |$batch| $body, split: |batch| {
            let mut out = sluice_plugin_sdk::SplitOutput::new("application/json");
            for (input, payload) in batch.payloads() {
                let lines = payload.split(|b| *b == b'\n').filter(|line| !line.is_empty());
                for (record, line) in lines.enumerate() {
                    out.push(line, sluice_plugin_sdk::Origin { input, record: record as u32, key: None, id: None });
                }
            }
            out
        });
    };
    ($plugin:ident, $name:literal, |$batch:ident| $body:block, split: |$split_batch:ident| $split_body:block) => {
        pub struct $plugin;

        impl sluice_plugin_sdk::Plugin for $plugin {
            fn manifest() -> sluice_plugin_sdk::Manifest {
                use sluice_plugin_sdk::{Column, ColumnType, Manifest, TableSchema};
                Manifest {
                    name: $name.into(),
                    version: "0.1.0".into(),
                    doc: "A test plugin that misbehaves on purpose.".into(),
                    content_types: vec!["application/json".into()],
                    settings: Vec::new(),
                    tables: vec![TableSchema {
                        name: "events".into(),
                        doc: "Whatever the plugin emits.".into(),
                        columns: vec![Column::new("value", ColumnType::String, "A value.")],
                    }],
                }
            }
            fn configure(_: &sluice_plugin_sdk::Settings) -> Result<Self, String> {
                Ok(Self)
            }
            fn split(&self, $split_batch: &sluice_plugin_sdk::Batch<'_>) -> sluice_plugin_sdk::SplitOutput $split_body
            fn transform(&self, $batch: &sluice_plugin_sdk::Batch<'_>) -> sluice_plugin_sdk::Output $body
        }

        sluice_plugin_sdk::export_plugin!($plugin);
    };
}
