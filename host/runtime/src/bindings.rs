//! Host-side bindings generated from every contract version this host loads (`wit/plugin.wit`
//! and the frozen versions under `wit/deps/`), and [`Guest`]: one plugin instance's exports,
//! whatever version it was built for.
//!
//! This is the only module that runs `bindgen!`. The rest of the crate works with the newest
//! version's types ([`types`]); an older plugin's results are converted up to them here (moves,
//! no copies of the values), and the batches it is given converted down.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::sandbox::SandboxState;

/// Contract 0.2.0, the newest: adds the `instant` column type.
mod v0_2 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../../wit/plugin.wit",
    });
}

/// Contract 0.1.0, frozen.
mod v0_1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../../wit/deps/sluice-plugin@0.1.0/plugin.wit",
    });
}

use v0_1::sluice::plugin::types as old;
pub use v0_2::sluice::plugin::types;

/// The WIT text of every contract version this host loads plugins for, oldest first: what
/// `sluice plugin wit` prints and `sluice plugin new` writes. A released version is frozen (a
/// test holds each one's SHA-256).
pub const CONTRACT_WIT: &[(&str, &str)] = &[
    ("0.1.0", include_str!("../../../wit/deps/sluice-plugin@0.1.0/plugin.wit")),
    ("0.2.0", include_str!("../../../wit/plugin.wit")),
];

/// A linked plugin, ready to be instantiated, for the contract version it exports.
pub(crate) enum GuestPre {
    V0_1(v0_1::PluginPre<SandboxState>),
    V0_2(v0_2::PluginPre<SandboxState>),
}

impl GuestPre {
    /// Checks that the component exports `contract`'s interface with the expected types.
    pub(crate) fn new(contract: &str, pre: InstancePre<SandboxState>) -> wasmtime::Result<Self> {
        match contract {
            "0.1.0" => Ok(Self::V0_1(v0_1::PluginPre::new(pre)?)),
            _ => Ok(Self::V0_2(v0_2::PluginPre::new(pre)?)),
        }
    }

    /// Instantiates the plugin in `store`.
    pub(crate) fn instantiate(&self, store: &mut Store<SandboxState>) -> wasmtime::Result<Guest> {
        match self {
            Self::V0_1(pre) => Ok(Guest::V0_1(pre.instantiate(store)?)),
            Self::V0_2(pre) => Ok(Guest::V0_2(pre.instantiate(store)?)),
        }
    }
}

/// One instance's exports.
pub(crate) enum Guest {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

impl Guest {
    /// `describe`.
    pub(crate) fn describe(&self, store: &mut Store<SandboxState>) -> wasmtime::Result<types::Manifest> {
        match self {
            Self::V0_1(b) => Ok(up::manifest(b.sluice_plugin_source().call_describe(store)?)),
            Self::V0_2(b) => b.sluice_plugin_source().call_describe(store),
        }
    }

    /// `configure`.
    pub(crate) fn configure(
        &self,
        store: &mut Store<SandboxState>,
        settings: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::V0_1(b) => b.sluice_plugin_source().call_configure(store, settings),
            Self::V0_2(b) => b.sluice_plugin_source().call_configure(store, settings),
        }
    }

    /// `split`.
    pub(crate) fn split(
        &self,
        store: &mut Store<SandboxState>,
        batch: &types::Batch,
    ) -> wasmtime::Result<types::SplitRecords> {
        match self {
            Self::V0_1(b) => Ok(up::split(b.sluice_plugin_source().call_split(store, &down::batch(batch))?)),
            Self::V0_2(b) => b.sluice_plugin_source().call_split(store, batch),
        }
    }

    /// `transform`.
    pub(crate) fn transform(
        &self,
        store: &mut Store<SandboxState>,
        batch: &types::Batch,
    ) -> wasmtime::Result<types::Transformed> {
        match self {
            Self::V0_1(b) => Ok(up::transformed(b.sluice_plugin_source().call_transform(store, &down::batch(batch))?)),
            Self::V0_2(b) => b.sluice_plugin_source().call_transform(store, batch),
        }
    }
}

/// Newest-version values for the host, from what a 0.1.0 plugin returned.
mod up {
    use super::{old, types};

    fn column_type(value: old::ColumnType) -> types::ColumnType {
        match value {
            old::ColumnType::Boolean => types::ColumnType::Boolean,
            old::ColumnType::Int32 => types::ColumnType::Int32,
            old::ColumnType::Int64 => types::ColumnType::Int64,
            old::ColumnType::Float64 => types::ColumnType::Float64,
            old::ColumnType::String => types::ColumnType::String,
            old::ColumnType::Date => types::ColumnType::Date,
            old::ColumnType::Timestamp => types::ColumnType::Timestamp,
        }
    }

    pub(super) fn manifest(m: old::Manifest) -> types::Manifest {
        types::Manifest {
            name: m.name,
            version: m.version,
            doc: m.doc,
            content_types: m.content_types,
            settings: m
                .settings
                .into_iter()
                .map(|s| types::Setting { name: s.name, doc: s.doc, default_value: s.default_value })
                .collect(),
            tables: m
                .tables
                .into_iter()
                .map(|t| types::TableSchema {
                    name: t.name,
                    doc: t.doc,
                    columns: t
                        .columns
                        .into_iter()
                        .map(|c| types::Column {
                            name: c.name,
                            type_: column_type(c.type_),
                            nullable: c.nullable,
                            doc: c.doc,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn values(v: old::ColumnValues) -> types::ColumnValues {
        match v {
            old::ColumnValues::Boolean(v) => types::ColumnValues::Boolean(v),
            old::ColumnValues::Int32(v) => types::ColumnValues::Int32(v),
            old::ColumnValues::Int64(v) => types::ColumnValues::Int64(v),
            old::ColumnValues::Float64(v) => types::ColumnValues::Float64(v),
            old::ColumnValues::String(s) => {
                types::ColumnValues::String(types::StringValues { offsets: s.offsets, data: s.data })
            }
            old::ColumnValues::Date(v) => types::ColumnValues::Date(v),
            old::ColumnValues::Timestamp(v) => types::ColumnValues::Timestamp(v),
        }
    }

    fn rejections(rejected: Vec<old::Rejection>) -> Vec<types::Rejection> {
        rejected
            .into_iter()
            .map(|r| types::Rejection { input: r.input, record: r.record, reason: r.reason, field: r.field })
            .collect()
    }

    pub(super) fn transformed(t: old::Transformed) -> types::Transformed {
        types::Transformed {
            tables: t
                .tables
                .into_iter()
                .map(|rows| types::TableRows {
                    table: rows.table,
                    inputs: rows.inputs,
                    columns: rows
                        .columns
                        .into_iter()
                        .map(|c| types::ColumnData { valid: c.valid, values: values(c.values) })
                        .collect(),
                })
                .collect(),
            rejected: rejections(t.rejected),
        }
    }

    pub(super) fn split(s: old::SplitRecords) -> types::SplitRecords {
        types::SplitRecords {
            records: types::Batch { content_type: s.records.content_type, data: s.records.data, ends: s.records.ends },
            origins: s
                .origins
                .into_iter()
                .map(|o| types::Origin { input: o.input, record: o.record, key: o.key, id: None })
                .collect(),
            rejected: rejections(s.rejected),
        }
    }
}

/// What a 0.1.0 plugin is given, from the host's newest-version values.
mod down {
    use super::{old, types};

    /// A copy of the batch: the two versions' batch records are the same shape but distinct
    /// Rust types (a copy of the payload bytes per call, for 0.1.0 plugins only).
    pub(super) fn batch(b: &types::Batch) -> old::Batch {
        old::Batch { content_type: b.content_type.clone(), data: b.data.clone(), ends: b.ends.clone() }
    }
}
