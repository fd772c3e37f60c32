//! The types sluice's host and its plugin SDKs share, so that both sides of the contract speak
//! of one column type, one manifest and one set of output shapes.
//!
//! The wire contract is `wit/plugin.wit`; these are its Rust forms (the host converts the WIT
//! bindings into them, the SDK builds them and converts them into the bindings), plus the rules
//! a manifest must follow ([`Manifest::check`]), which the host enforces and the SDK's tests can
//! run without a host.

mod bundled;
mod delimited;
mod manifest;
mod mime;
mod output;

pub use bundled::BundledPlugin;
pub use delimited::{QuoteFaults, plain_text_is_json, quote_faults};
pub use manifest::{Column, ColumnType, Manifest, Setting, TableSchema, check_plugin_name};
pub use mime::{essence, parameter};
pub use output::{ColumnValues, Rejection};
