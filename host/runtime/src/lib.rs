//! The sluice plugin runtime: loads source plugins (WebAssembly components built against
//! `wit/plugin.wit`) and runs them in a sandbox.
//!
//! - [`PluginEngine`] owns the wasmtime engine, the epoch ticker that enforces call deadlines,
//!   the sandboxed linker and the on-disk cache of compiled code.
//! - [`Plugin`] is one loaded component: its manifest, digest and a pre-linked instance factory.
//! - [`Source`] binds a plugin to settings and runs batches through a pool of reused instances.
//! - [`PluginRegistry`] loads every plugin in a directory (plus bundled ones) and hot-swaps them
//!   when files change.
//!
//! Every failure is a typed error: [`LoadError`] when a file cannot become a plugin,
//! [`CallError`] when a call fails. Neither ever brings the host down.

mod batch;
mod bindings;
mod cache;
mod config;
mod engine;
mod error;
mod manifest;
mod output;
mod plugin;
mod registry;
mod sandbox;
mod source;
mod source_table;

pub use batch::{Batch, BatchBuilder};
pub use bindings::CONTRACT_WIT;
pub use cache::UNUSED_CODE_KEPT_FOR;
pub use config::SandboxConfig;
pub use engine::{PERFMAP_ENV, PluginEngine};
pub use error::{CallError, LoadError};
pub use output::{Cell, ColumnData, Origin, SplitRecords, TableRows, Transformed};
pub use plugin::{Plugin, PluginOrigin, SUPPORTED_CONTRACTS};
pub use registry::{Admission, PLUGIN_FILES_FAILED, PluginRegistry, RegistryEvent, table_conflict};
pub use sluice_contract::{
    BundledPlugin, Column, ColumnType, ColumnValues, Manifest, QuoteFaults, Rejection, Setting, TableSchema,
    check_plugin_name, essence, parameter, plain_text_is_json, quote_faults,
};
pub use source::{Handled, Source, SourceError};
pub use source_table::{SourceBinding, SourceTable};
