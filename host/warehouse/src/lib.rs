//! The warehouse: typed Parquet files in a Hive layout, on HDFS or in a local directory.
//!
//! Layout: `<root>/<table>/<partition-key>=<value>/part-<source>-p<P>-o<FIRST>-<LAST>-f<I>of<N>.parquet`.
//! A file name says which log records it holds: source, log partition `P` and the offset range
//! `FIRST..=LAST`; the `N` files of one range (several tables, several Hive partitions) are one
//! commit. Files are written hidden (`.part-….inprogress`, which Hive and Trino skip) and then
//! renamed; once the first file of a commit is renamed, the commit is decided, and
//! [`Warehouse::recover`] finishes it after a crash (roll forward) or removes the hidden files of
//! a commit that never started renaming (roll back). The committed position of every (source,
//! log partition) is therefore readable from the file names alone.

mod encode;
mod error;
mod layout;
mod naming;
mod storage;
mod table;
mod warehouse;

pub use encode::{Compression, EncodeOptions, file_schema};
pub use error::WarehouseError;
pub use layout::{HIVE_DEFAULT_PARTITION, PartitionSpec};
pub use naming::DataFile;
/// Where a file lives in the warehouse (object_store's path).
pub use object_store::path::Path as ObjectPath;
pub use storage::Storage;
pub use table::TableDef;
pub use warehouse::{PartitionDir, Recovered, Segment, TableLayout, Upload, Warehouse, WarehouseConfig};
