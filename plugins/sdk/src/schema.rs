//! What a plugin declares: its manifest, tables, columns and settings. The types are the
//! contract's own (`sluice-contract`), shared with the host.

pub use sluice_contract::{Column, ColumnType, Manifest, Setting, TableSchema};
