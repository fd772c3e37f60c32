//! The glue between the generated bindings and a [`Plugin`]: used by `export_plugin!`.
//!
//! Not part of the public API; it is public only so the macro can reach it.

use std::any::Any;
use std::cell::RefCell;

use crate::batch::Batch;
use crate::bindings::sluice::plugin::types as wit;
use crate::output::{ColumnValues, Output, SplitOutput};
use crate::plugin::Plugin;
use crate::settings::Settings;
use sluice_contract::{ColumnType, Manifest};

thread_local! {
    /// The configured plugin of this instance (a component instance is single-threaded).
    static CONFIGURED: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// `describe` for plugin `P`.
pub fn describe<P: Plugin>() -> wit::Manifest {
    manifest_to_wit(P::manifest())
}

/// `configure` for plugin `P`.
pub fn configure<P: Plugin>(settings: Vec<(String, String)>) -> Result<(), String> {
    let settings = Settings::new(&P::manifest().settings, &settings)?;
    let plugin = P::configure(&settings)?;
    CONFIGURED.with(|c| *c.borrow_mut() = Some(Box::new(plugin)));
    Ok(())
}

fn with_plugin<P: Plugin, R>(f: impl FnOnce(&P) -> R) -> R {
    CONFIGURED.with(|c| {
        let configured = c.borrow();
        let plugin =
            configured.as_ref().and_then(|p| p.downcast_ref::<P>()).expect("the host calls configure before any batch");
        f(plugin)
    })
}

/// `split` for plugin `P`.
pub fn split<P: Plugin>(input: wit::Batch) -> wit::SplitRecords {
    let out = with_plugin::<P, _>(|p| p.split(&Batch::new(&input.content_type, &input.data, &input.ends)));
    split_to_wit(out)
}

/// `transform` for plugin `P`.
pub fn transform<P: Plugin>(input: wit::Batch) -> wit::Transformed {
    let out = with_plugin::<P, _>(|p| p.transform(&Batch::new(&input.content_type, &input.data, &input.ends)));
    output_to_wit(out)
}

fn column_type_to_wit(t: ColumnType) -> wit::ColumnType {
    match t {
        ColumnType::Boolean => wit::ColumnType::Boolean,
        ColumnType::Int32 => wit::ColumnType::Int32,
        ColumnType::Int64 => wit::ColumnType::Int64,
        ColumnType::Float64 => wit::ColumnType::Float64,
        ColumnType::String => wit::ColumnType::String,
        ColumnType::Date => wit::ColumnType::Date,
        ColumnType::Timestamp => wit::ColumnType::Timestamp,
        ColumnType::Instant => wit::ColumnType::Instant,
    }
}

fn manifest_to_wit(m: Manifest) -> wit::Manifest {
    wit::Manifest {
        name: m.name,
        version: m.version,
        doc: m.doc,
        content_types: m.content_types,
        settings: m
            .settings
            .into_iter()
            .map(|s| wit::Setting { name: s.name, doc: s.doc, default_value: s.default })
            .collect(),
        tables: m
            .tables
            .into_iter()
            .map(|t| wit::TableSchema {
                name: t.name,
                doc: t.doc,
                columns: t
                    .columns
                    .into_iter()
                    .map(|c| wit::Column {
                        name: c.name,
                        type_: column_type_to_wit(c.column_type),
                        nullable: c.nullable,
                        doc: c.doc,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn rejection_to_wit(r: crate::output::Rejection) -> wit::Rejection {
    wit::Rejection { input: r.input, record: r.record, reason: r.reason, field: r.field }
}

fn output_to_wit(out: Output) -> wit::Transformed {
    wit::Transformed {
        tables: out
            .tables
            .into_iter()
            .map(|t| wit::TableRows {
                table: t.table,
                inputs: t.inputs,
                columns: t
                    .columns
                    .into_iter()
                    .map(|c| wit::ColumnData {
                        valid: c.valid,
                        values: match c.values {
                            ColumnValues::Boolean(v) => wit::ColumnValues::Boolean(v),
                            ColumnValues::Int32(v) => wit::ColumnValues::Int32(v),
                            ColumnValues::Int64(v) => wit::ColumnValues::Int64(v),
                            ColumnValues::Float64(v) => wit::ColumnValues::Float64(v),
                            ColumnValues::String { offsets, data } => {
                                wit::ColumnValues::String(wit::StringValues { offsets, data })
                            }
                            ColumnValues::Date(v) => wit::ColumnValues::Date(v),
                            ColumnValues::Timestamp(v) => wit::ColumnValues::Timestamp(v),
                            ColumnValues::Instant(v) => wit::ColumnValues::Instant(v),
                        },
                    })
                    .collect(),
            })
            .collect(),
        rejected: out.rejected.into_iter().map(rejection_to_wit).collect(),
    }
}

fn split_to_wit(out: SplitOutput) -> wit::SplitRecords {
    wit::SplitRecords {
        records: wit::Batch { content_type: out.content_type, data: out.data, ends: out.ends },
        origins: out
            .origins
            .into_iter()
            .map(|o| wit::Origin { input: o.input, record: o.record, key: o.key, id: o.id })
            .collect(),
        rejected: out.rejected.into_iter().map(rejection_to_wit).collect(),
    }
}
