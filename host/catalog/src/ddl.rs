//! DDL for Trino's Hive connector and for Hive, from Arrow schemas.

use arrow::datatypes::{DataType, TimeUnit};

use crate::error::CatalogError;

pub use sluice_warehouse::TableDef;

/// The Trino type of an Arrow type.
pub fn trino_type(column: &str, data_type: &DataType) -> Result<&'static str, CatalogError> {
    Ok(match data_type {
        DataType::Boolean => "boolean",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        DataType::Float64 => "double",
        DataType::Utf8 => "varchar",
        DataType::Date32 => "date",
        DataType::Timestamp(TimeUnit::Microsecond, _) => "timestamp(6)",
        other => return Err(unsupported(column, other)),
    })
}

/// The Hive type of an Arrow type.
pub fn hive_type(column: &str, data_type: &DataType) -> Result<&'static str, CatalogError> {
    Ok(match data_type {
        DataType::Boolean => "BOOLEAN",
        DataType::Int32 => "INT",
        DataType::Int64 => "BIGINT",
        DataType::Float64 => "DOUBLE",
        DataType::Utf8 => "STRING",
        DataType::Date32 => "DATE",
        DataType::Timestamp(TimeUnit::Microsecond, _) => "TIMESTAMP",
        other => return Err(unsupported(column, other)),
    })
}

fn unsupported(column: &str, data_type: &DataType) -> CatalogError {
    CatalogError::UnsupportedType { column: column.to_string(), data_type: data_type.to_string() }
}

/// Quotes an identifier for SQL.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Quotes a string literal for SQL.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `CREATE SCHEMA` for Trino.
pub fn trino_schema(catalog: &str, schema: &str, location: &str) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {}.{} WITH (location = {})", quote(catalog), quote(schema), literal(location))
}

/// `CREATE TABLE` for Trino's Hive connector: an external Parquet table partitioned by date.
pub fn trino_table(catalog: &str, schema: &str, table: &TableDef) -> Result<String, CatalogError> {
    let mut columns = Vec::new();
    for field in table.schema.fields() {
        columns.push(format!("    {} {}", quote(field.name()), trino_type(field.name(), field.data_type())?));
    }
    columns.push(format!("    {} date", quote(&table.partition_key)));
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {}.{}.{} (\n{}\n) WITH (\n    format = 'PARQUET',\n    external_location = {},\n    partitioned_by = ARRAY[{}]\n)",
        quote(catalog),
        quote(schema),
        quote(&table.name),
        columns.join(",\n"),
        literal(&table.location),
        literal(&table.partition_key)
    ))
}

/// `CREATE DATABASE` for Hive.
pub fn hive_database(schema: &str, location: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS `{schema}` LOCATION {}", literal(location))
}

/// `CREATE EXTERNAL TABLE` for Hive.
pub fn hive_table(schema: &str, table: &TableDef) -> Result<String, CatalogError> {
    let mut columns = Vec::new();
    for field in table.schema.fields() {
        columns.push(format!("    `{}` {}", field.name(), hive_type(field.name(), field.data_type())?));
    }
    Ok(format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS `{schema}`.`{}` (\n{}\n)\nPARTITIONED BY (`{}` DATE)\nSTORED AS PARQUET\nLOCATION {};\nMSCK REPAIR TABLE `{schema}`.`{}`",
        table.name,
        columns.join(",\n"),
        table.partition_key,
        literal(&table.location),
        table.name
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn table() -> TableDef {
        TableDef {
            name: "lab_results".into(),
            schema: Arc::new(Schema::new(vec![
                Field::new("labvalue", DataType::Float64, true),
                Field::new("labdatetime", DataType::Timestamp(TimeUnit::Microsecond, None), true),
                Field::new("ingest_received_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            ])),
            location: "hdfs://nn:9000/w/lab_results".into(),
            partition_key: "ingest_date".into(),
        }
    }

    #[test]
    fn trino_and_hive_statements_carry_types_location_and_partitioning() {
        assert_eq!(
            trino_table("hive", "sluice", &table()).unwrap(),
            "CREATE TABLE IF NOT EXISTS \"hive\".\"sluice\".\"lab_results\" (\n    \"labvalue\" double,\n    \"labdatetime\" timestamp(6),\n    \"ingest_received_at\" timestamp(6),\n    \"ingest_date\" date\n) WITH (\n    format = 'PARQUET',\n    external_location = 'hdfs://nn:9000/w/lab_results',\n    partitioned_by = ARRAY['ingest_date']\n)"
        );
        assert_eq!(
            hive_table("sluice", &table()).unwrap(),
            "CREATE EXTERNAL TABLE IF NOT EXISTS `sluice`.`lab_results` (\n    `labvalue` DOUBLE,\n    `labdatetime` TIMESTAMP,\n    `ingest_received_at` TIMESTAMP\n)\nPARTITIONED BY (`ingest_date` DATE)\nSTORED AS PARQUET\nLOCATION 'hdfs://nn:9000/w/lab_results';\nMSCK REPAIR TABLE `sluice`.`lab_results`"
        );
        assert_eq!(
            trino_schema("hive", "sluice", "file:///it's"),
            "CREATE SCHEMA IF NOT EXISTS \"hive\".\"sluice\" WITH (location = 'file:///it''s')"
        );
    }

    #[test]
    fn types_the_catalog_cannot_hold_are_refused() {
        let error = trino_type("x", &DataType::UInt8).unwrap_err().to_string();
        assert_eq!(error, "column `x` has type UInt8, which the catalog cannot hold");
    }
}
