//! The catalog: what Trino (or Hive) needs to query the warehouse.
//!
//! - [`ddl`]: `CREATE` statements for Trino's Hive connector and for Hive, from a table's Arrow
//!   schema (the plugin's columns plus provenance), its location and its partition key.
//! - [`TrinoClient`]: runs statements over Trino's HTTP protocol.
//! - [`CatalogSync`]: creates the schema and tables, adds columns a plugin added compatibly, and
//!   registers new partition directories as the stream commits them.

mod config;
pub mod ddl;
mod error;
mod sync;
mod trino;

pub use config::CatalogConfig;
pub use ddl::TableDef;
pub use error::CatalogError;
pub use sync::{CatalogSync, NewPartition};
pub use trino::TrinoClient;
