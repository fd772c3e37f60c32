//! The manifest a plugin describes, converted from the WIT bindings into the contract's types
//! (`sluice-contract`) and checked against the contract's rules.

use sluice_contract::{Column, ColumnType, Manifest, Setting, TableSchema};

use crate::bindings::types;

impl From<types::ColumnType> for ColumnType {
    fn from(value: types::ColumnType) -> Self {
        match value {
            types::ColumnType::Boolean => Self::Boolean,
            types::ColumnType::Int32 => Self::Int32,
            types::ColumnType::Int64 => Self::Int64,
            types::ColumnType::Float64 => Self::Float64,
            types::ColumnType::String => Self::String,
            types::ColumnType::Date => Self::Date,
            types::ColumnType::Timestamp => Self::Timestamp,
            types::ColumnType::Instant => Self::Instant,
        }
    }
}

/// The manifest a plugin returned, if it follows the contract ([`Manifest::checked`]).
pub(crate) fn from_wit(manifest: types::Manifest) -> Result<Manifest, String> {
    let tables = manifest
        .tables
        .into_iter()
        .map(|table| TableSchema {
            name: table.name,
            doc: table.doc,
            columns: table
                .columns
                .into_iter()
                .map(|c| Column { name: c.name, column_type: c.type_.into(), nullable: c.nullable, doc: c.doc })
                .collect(),
        })
        .collect();
    let settings =
        manifest.settings.into_iter().map(|s| Setting { name: s.name, doc: s.doc, default: s.default_value }).collect();
    Manifest {
        name: manifest.name,
        version: manifest.version,
        doc: manifest.doc,
        content_types: manifest.content_types,
        settings,
        tables,
    }
    .checked()
}
