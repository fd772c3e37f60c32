//! Plugin output (validated columns) to Arrow record batches, with provenance per row.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::Int32Type;
use arrow::error::ArrowError;
use sluice_log::{Position, Provenance};
use sluice_runtime::{ColumnData, ColumnValues, TableRows, TableSchema};

use crate::schema::batch_schema;

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
        ColumnValues::Instant(values) => {
            Arc::new(TimestampMicrosecondArray::new(ScalarBuffer::from(values), nulls).with_timezone("UTC"))
        }
        ColumnValues::String { offsets, data } => {
            let offsets: Vec<i32> = offsets
                .into_iter()
                .map(|o| i32::try_from(o).map_err(|_| ArrowError::ComputeError("string column over 2 GiB".into())))
                .collect::<Result<_, _>>()?;
            Arc::new(StringArray::try_new(OffsetBuffer::new(ScalarBuffer::from(offsets)), data.into(), nulls)?)
        }
    })
}

/// Where one input of a `transform` call came from: its log position and its request's
/// provenance.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The record's position in the log.
    pub position: Position,
    /// The provenance of the request it came in.
    pub provenance: &'a Provenance,
}

/// A provenance string per row, dictionary-encoded: rows of one request follow each other and
/// share one value.
fn repeated<'a>(rows: &[u32], inputs: &[Input<'a>], field: impl Fn(&Input<'a>) -> &'a str) -> ArrayRef {
    let mut values: Vec<&str> = Vec::new();
    let keys: Vec<i32> = rows
        .iter()
        .map(|&i| {
            let value = field(&inputs[i as usize]);
            if values.last() != Some(&value) {
                values.push(value);
            }
            (values.len() - 1) as i32
        })
        .collect();
    Arc::new(DictionaryArray::<Int32Type>::new(Int32Array::from(keys), Arc::new(StringArray::from(values))))
}

/// The same string on every one of `count` rows, dictionary-encoded.
fn constant(value: &str, count: usize) -> ArrayRef {
    let keys = Int32Array::from(vec![0; count]);
    Arc::new(DictionaryArray::<Int32Type>::new(keys, Arc::new(StringArray::from(vec![value]))))
}

/// The rows of one table as a record batch of [`batch_schema`](crate::batch_schema): the
/// plugin's columns (moved, not copied), then the provenance of the record each row came from
/// (`inputs[row input]`).
pub fn table_batch(
    table: &TableSchema,
    rows: TableRows,
    inputs: &[Input<'_>],
    producer: &Producer,
) -> Result<RecordBatch, ArrowError> {
    let schema = batch_schema(table);
    let count = rows.inputs.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for column in rows.columns {
        columns.push(column_array(column)?);
    }
    let input = &rows.inputs;
    columns.push(repeated(input, inputs, |r| r.provenance.source.as_str()));
    columns.push(constant(&producer.plugin, count));
    columns.push(constant(&producer.digest, count));
    columns.push(repeated(input, inputs, |r| r.provenance.user.as_str()));
    columns.push(repeated(input, inputs, |r| r.provenance.request_id.as_str()));
    let received: Vec<i64> = input.iter().map(|&i| inputs[i as usize].provenance.received_at_us).collect();
    columns.push(Arc::new(TimestampMicrosecondArray::from(received).with_timezone("UTC")));
    let partitions: Vec<i32> = input.iter().map(|&i| inputs[i as usize].position.partition as i32).collect();
    columns.push(Arc::new(Int32Array::from(partitions)));
    let offsets: Vec<i64> = input.iter().map(|&i| inputs[i as usize].position.offset as i64).collect();
    columns.push(Arc::new(Int64Array::from(offsets)));
    RecordBatch::try_new(schema, columns)
}
