//! Arrow schemas of warehouse tables: the plugin's columns, then the provenance columns.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_runtime::{ColumnType, TableSchema};
use sluice_warehouse::{TableDef, WarehouseConfig};

/// Source name.
pub const INGEST_SOURCE: &str = "ingest_source";
/// `name@version` of the plugin that transformed the record.
pub const INGEST_PLUGIN: &str = "ingest_plugin";
/// Hex SHA-256 of that plugin's `.wasm`.
pub const INGEST_PLUGIN_DIGEST: &str = "ingest_plugin_digest";
/// Submitting user.
pub const INGEST_USER: &str = "ingest_user";
/// Request id of the submission.
pub const INGEST_REQUEST_ID: &str = "ingest_request_id";
/// When the API received the record (UTC).
pub const INGEST_RECEIVED_AT: &str = "ingest_received_at";
/// Log partition of the record.
pub const INGEST_PARTITION: &str = "ingest_partition";
/// Log offset of the record.
pub const INGEST_OFFSET: &str = "ingest_offset";

/// The Arrow type of a plugin column type. Timestamps are wall-clock (no time zone), as
/// plugins report them; instants are UTC-adjusted.
pub fn arrow_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::String => DataType::Utf8,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Instant => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The provenance columns every table ends with.
pub fn provenance_fields() -> Vec<Field> {
    vec![
        Field::new(INGEST_SOURCE, DataType::Utf8, false),
        Field::new(INGEST_PLUGIN, DataType::Utf8, false),
        Field::new(INGEST_PLUGIN_DIGEST, DataType::Utf8, false),
        Field::new(INGEST_USER, DataType::Utf8, false),
        Field::new(INGEST_REQUEST_ID, DataType::Utf8, false),
        Field::new(INGEST_RECEIVED_AT, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new(INGEST_PARTITION, DataType::Int32, false),
        Field::new(INGEST_OFFSET, DataType::Int64, false),
    ]
}

/// How the stream holds `table`'s rows in memory: [`table_schema`], with the provenance strings
/// (the same on every row of a request) dictionary-encoded: one copy per request instead of
/// one per row. The warehouse writes them as plain strings (`sluice_warehouse::file_schema`).
pub fn batch_schema(table: &TableSchema) -> SchemaRef {
    let file = table_schema(table);
    let repeated = [INGEST_SOURCE, INGEST_PLUGIN, INGEST_PLUGIN_DIGEST, INGEST_USER, INGEST_REQUEST_ID];
    let fields: Vec<Field> = file
        .fields()
        .iter()
        .map(|field| {
            if repeated.contains(&field.name().as_str()) {
                field.as_ref().clone().with_data_type(repeated_string_type())
            } else {
                field.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The in-memory type of a provenance string column.
pub(crate) fn repeated_string_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The full schema of `table`, as its files hold it.
pub fn table_schema(table: &TableSchema) -> SchemaRef {
    let mut fields: Vec<Field> =
        table.columns.iter().map(|c| Field::new(c.name.clone(), arrow_type(c.column_type), c.nullable)).collect();
    fields.extend(provenance_fields());
    Arc::new(Schema::new(fields))
}

/// The one definition of `table` in the warehouse at `warehouse_url`: the plugin's columns and
/// the provenance columns ([`table_schema`]), its directory, and its partitioning
/// ([`WarehouseConfig::partitioning`], which the stream's files follow too).
pub fn table_definition(table: &TableSchema, warehouse: &WarehouseConfig, warehouse_url: &str) -> TableDef {
    TableDef {
        name: table.name.clone(),
        schema: table_schema(table),
        location: format!("{}/{}", warehouse_url.trim_end_matches('/'), table.name),
        partition_key: warehouse.partitioning(&table.name).key,
    }
}

/// What is wrong with `[warehouse.tables.NAME] partition_by` for `table`, if anything: the
/// column must be one of the table's (the provenance columns included) and hold a date or a
/// timestamp, or the stream could write none of the table's rows.
pub fn partitioning_fault(table: &TableSchema, warehouse: &WarehouseConfig) -> Option<String> {
    let column = &warehouse.tables.get(&table.name)?.partition_by;
    let schema = table_schema(table);
    let dated: Vec<&str> = schema
        .fields()
        .iter()
        .filter(|f| matches!(f.data_type(), DataType::Date32 | DataType::Timestamp(..)))
        .map(|f| f.name().as_str())
        .collect();
    let problem = match schema.field_with_name(column) {
        Err(_) => "the table has no such column",
        Ok(field) if !dated.contains(&field.name().as_str()) => "that column holds neither dates nor timestamps",
        Ok(_) => return None,
    };
    Some(format!(
        "warehouse.tables.{}.partition_by = \"{column}\": {problem} (its date and timestamp columns: {})",
        table.name,
        dated.join(", ")
    ))
}

/// Whether files of schema `new` may join a table whose files have schema `old`: every old
/// column keeps its type, a required old column is kept, and every new column is nullable (old
/// files read it as NULL). A nullable old column may be missing: its new files read it as NULL
/// (a plugin rolled back to a version from before the column was added).
pub fn check_evolution(old: &arrow::datatypes::Schema, new: &arrow::datatypes::Schema) -> Result<(), String> {
    for field in old.fields() {
        match new.field_with_name(field.name()) {
            Ok(now) if now.data_type() == field.data_type() => {}
            Ok(now) => {
                return Err(format!(
                    "column `{}` changed from {} to {}",
                    field.name(),
                    field.data_type(),
                    now.data_type()
                ));
            }
            Err(_) if field.is_nullable() => {}
            Err(_) => return Err(format!("required column `{}` was removed", field.name())),
        }
    }
    for field in new.fields() {
        if old.field_with_name(field.name()).is_err() && !field.is_nullable() {
            return Err(format!("column `{}` was added as required (NOT NULL)", field.name()));
        }
    }
    Ok(())
}

/// The table's schema once files of `new` have joined files of `old` (checked with
/// [`check_evolution`]); the warehouse merges its schema records the same way.
pub use sluice_warehouse::merged_schema as merged;

#[cfg(test)]
mod tests {
    use arrow::datatypes::Schema;

    use super::*;

    #[test]
    fn columns_may_be_added_as_nullable_but_not_removed_retyped_or_required() {
        let old = Schema::new(vec![Field::new("a", DataType::Int32, true)]);
        let added = Schema::new(vec![Field::new("a", DataType::Int32, true), Field::new("b", DataType::Utf8, true)]);
        assert_eq!(check_evolution(&old, &added), Ok(()));
        let required =
            Schema::new(vec![Field::new("a", DataType::Int32, true), Field::new("b", DataType::Utf8, false)]);
        assert_eq!(check_evolution(&old, &required), Err("column `b` was added as required (NOT NULL)".into()));
        let retyped = Schema::new(vec![Field::new("a", DataType::Int64, true)]);
        assert_eq!(check_evolution(&old, &retyped), Err("column `a` changed from Int32 to Int64".into()));
        // A nullable column may be missing (a rollback); a required one may not.
        assert_eq!(check_evolution(&added, &old), Ok(()));
        assert_eq!(merged(&added, &old), added);
        let required_a = Schema::new(vec![Field::new("a", DataType::Int32, false)]);
        assert_eq!(
            check_evolution(&required_a, &Schema::new(vec![Field::new("b", DataType::Utf8, true)])),
            Err("required column `a` was removed".into())
        );
    }
}
