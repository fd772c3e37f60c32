//! The warehouse: typed Parquet files in a Hive layout, on HDFS or in a local directory.
//!
//! Layout: `<root>/<table>/<partition-key>=<value>/part-<source>-p<P>-o<FIRST>-<LAST>-c<TOKEN>-f<I>of<N>.parquet`.
//! A file name says which log records it holds: source, log partition `P` and the offset range
//! `FIRST..=LAST`, and which writer run wrote it (`TOKEN`); the `N` files of one range and token
//! (several tables, several Hive partitions) are one commit. Files are uploaded hidden
//! (`.part-….inprogress`, which Hive and Trino skip, [`Warehouse::upload`]); the caller decides
//! the commit (the stream stores its consumer position with the commit's id, in a write the log
//! fences), then [`Warehouse::publish`] renames them into place. Recovery of a partition
//! ([`Warehouse::recover_partitions`]) renames the hidden files of the decided commit, or of a
//! commit with a file already in place, and removes every other hidden file of it.

mod encode;
mod error;
mod layout;
mod naming;
mod schemas;
mod storage;
mod table;
mod warehouse;

pub use encode::{Compression, EncodeOptions, file_schema};
pub use error::WarehouseError;
pub use layout::{HIVE_DEFAULT_PARTITION, PartitionSpec};
pub use naming::DataFile;
/// Where a file lives in the warehouse (object_store's path).
pub use object_store::path::Path as ObjectPath;
pub use schemas::merged_schema;
pub use storage::Storage;
pub use table::TableDef;
pub use warehouse::{PartitionDir, Recovered, Segment, TableLayout, Upload, Warehouse, WarehouseConfig};
