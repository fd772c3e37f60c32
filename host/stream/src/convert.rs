//! Plugin output (validated columns) to Arrow record batches, with provenance per row.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::error::ArrowError;
use sluice_log::StoredRecord;
use sluice_runtime::{ColumnData, ColumnValues, TableRows, TableSchema};

use crate::schema::table_schema;

/// Who produced a batch of rows: the plugin's `name@version` and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    /// `name@version`.
    pub plugin: String,
    /// Hex SHA-256 of the `.wasm`.
    pub digest: String,
}

fn nulls(valid: Vec<bool>) -> Option<NullBuffer> {
    (!valid.is_empty()).then(|| NullBuffer::from(valid))
}

fn column_array(column: ColumnData) -> Result<ArrayRef, ArrowError> {
    let nulls = nulls(column.valid);
    Ok(match column.values {
        ColumnValues::Boolean(values) => Arc::new(BooleanArray::new(BooleanBuffer::from(values), nulls)),
        ColumnValues::Int32(values) => Arc::new(Int32Array::new(ScalarBuffer::from(values), nulls)),
        ColumnValues::Int64(values) => Arc::new(Int64Array::new(ScalarBuffer::from(values), nulls)),
        ColumnValues::Float64(values) => Arc::new(Float64Array::new(ScalarBuffer::from(values), nulls)),
        ColumnValues::Date(values) => Arc::new(Date32Array::new(ScalarBuffer::from(values), nulls)),
        ColumnValues::Timestamp(values) => Arc::new(TimestampMicrosecondArray::new(ScalarBuffer::from(values), nulls)),
        ColumnValues::String { offsets, data } => {
            let offsets: Vec<i32> = offsets
                .into_iter()
                .map(|o| i32::try_from(o).map_err(|_| ArrowError::ComputeError("string column over 2 GiB".into())))
                .collect::<Result<_, _>>()?;
            Arc::new(StringArray::try_new(OffsetBuffer::new(ScalarBuffer::from(offsets)), data.into(), nulls)?)
        }
    })
}

fn strings<'a>(rows: &[u32], inputs: &[&'a StoredRecord], field: impl Fn(&'a StoredRecord) -> &'a str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(|&i| field(inputs[i as usize]))))
}

/// The rows of one table as a record batch: the plugin's columns (moved, not copied), then the
/// provenance of the record each row came from (`inputs[row input]`).
pub fn table_batch(
    table: &TableSchema,
    rows: TableRows,
    inputs: &[&StoredRecord],
    producer: &Producer,
) -> Result<RecordBatch, ArrowError> {
    let schema = table_schema(table);
    let count = rows.inputs.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for column in rows.columns {
        columns.push(column_array(column)?);
    }
    let input = &rows.inputs;
    columns.push(strings(input, inputs, |r| &r.provenance.source));
    columns.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(producer.plugin.as_str(), count))));
    columns.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(producer.digest.as_str(), count))));
    columns.push(strings(input, inputs, |r| &r.provenance.user));
    columns.push(strings(input, inputs, |r| &r.provenance.request_id));
    let received: Vec<i64> = input.iter().map(|&i| inputs[i as usize].provenance.received_at_us).collect();
    columns.push(Arc::new(TimestampMicrosecondArray::from(received).with_timezone("UTC")));
    let partitions: Vec<i32> = input.iter().map(|&i| inputs[i as usize].position.partition as i32).collect();
    columns.push(Arc::new(Int32Array::from(partitions)));
    let offsets: Vec<i64> = input.iter().map(|&i| inputs[i as usize].position.offset as i64).collect();
    columns.push(Arc::new(Int64Array::from(offsets)));
    RecordBatch::try_new(schema, columns)
}
