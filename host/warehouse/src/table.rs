//! A table as the catalog sees it.

use arrow::datatypes::SchemaRef;

/// One warehouse table: its columns as written, its directory and its partition key. Built in
/// one place (`sluice_stream::table_definition`) from the plugin's manifest, the stream's
/// provenance columns and [`crate::WarehouseConfig::partitioning`].
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Table name.
    pub name: String,
    /// Columns as written to Parquet (plugin columns, then provenance).
    pub schema: SchemaRef,
    /// The table's directory, e.g. `hdfs://namenode:9000/warehouse/lab_results`.
    pub location: String,
    /// The Hive partition key (`ingest_date`, or `event_date`); its values are dates.
    pub partition_key: String,
}
