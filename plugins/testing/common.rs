// Shared by the hostile test plugins: a one-table manifest so each plugin is only its behaviour.

use sluice_plugin_sdk::{Column, ColumnType, Manifest, TableSchema};

pub fn manifest(name: &str, version: &str) -> Manifest {
    Manifest {
        name: name.into(),
        version: version.into(),
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
