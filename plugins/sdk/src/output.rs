//! Builders for what a plugin returns: columnar rows per table, canonical records, rejections.

pub use sluice_contract::{ColumnValues, Rejection};

use sluice_contract::{ColumnType, TableSchema};

/// One typed value on its way into a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// NULL.
    Null,
    /// Boolean.
    Boolean(bool),
    /// 32-bit integer.
    Int32(i32),
    /// 64-bit integer.
    Int64(i64),
    /// Double.
    Float64(f64),
    /// Text.
    String(&'a str),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00, wall clock.
    Timestamp(i64),
    /// Microseconds since 1970-01-01 00:00:00 UTC: a point in time (contract 0.2.0).
    Instant(i64),
}

/// One column being built.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnBuilder {
    /// Validity flags; kept empty until the first NULL.
    pub valid: Vec<bool>,
    /// Values; a NULL row holds a zero value.
    pub values: ColumnValues,
    rows: usize,
    has_nulls: bool,
}

impl ColumnBuilder {
    /// An empty column of `column_type`.
    pub fn new(column_type: ColumnType) -> Self {
        Self { valid: Vec::new(), values: ColumnValues::empty(column_type), rows: 0, has_nulls: false }
    }

    /// Whether `value` fits this column (NULL fits any; nullability is checked by the host).
    pub fn accepts(&self, value: &Value<'_>) -> bool {
        matches!(
            (&self.values, value),
            (_, Value::Null)
                | (ColumnValues::Boolean(_), Value::Boolean(_))
                | (ColumnValues::Int32(_), Value::Int32(_))
                | (ColumnValues::Int64(_), Value::Int64(_))
                | (ColumnValues::Float64(_), Value::Float64(_))
                | (ColumnValues::String { .. }, Value::String(_))
                | (ColumnValues::Date(_), Value::Date(_))
                | (ColumnValues::Timestamp(_), Value::Timestamp(_))
                | (ColumnValues::Instant(_), Value::Instant(_))
        )
    }

    /// Appends one value.
    ///
    /// # Panics
    /// When the value's type does not match the column's (a bug in the plugin).
    #[inline(always)]
    pub fn push(&mut self, value: &Value<'_>) {
        let is_null = matches!(value, Value::Null);
        if is_null && !self.has_nulls {
            // First NULL: materialize the flags of the rows so far.
            self.has_nulls = true;
            self.valid = vec![true; self.rows];
        }
        if self.has_nulls {
            self.valid.push(!is_null);
        }
        match (&mut self.values, value) {
            (ColumnValues::Boolean(v), Value::Boolean(x)) => v.push(*x),
            (ColumnValues::Int32(v), Value::Int32(x)) | (ColumnValues::Date(v), Value::Date(x)) => v.push(*x),
            (ColumnValues::Int64(v), Value::Int64(x))
            | (ColumnValues::Timestamp(v), Value::Timestamp(x))
            | (ColumnValues::Instant(v), Value::Instant(x)) => v.push(*x),
            (ColumnValues::Float64(v), Value::Float64(x)) => v.push(*x),
            (ColumnValues::String { offsets, data }, Value::String(s)) => {
                data.extend_from_slice(s.as_bytes());
                offsets.push(data.len() as u32);
            }
            (ColumnValues::Boolean(v), Value::Null) => v.push(false),
            (ColumnValues::Int32(v) | ColumnValues::Date(v), Value::Null) => v.push(0),
            (ColumnValues::Int64(v) | ColumnValues::Timestamp(v) | ColumnValues::Instant(v), Value::Null) => v.push(0),
            (ColumnValues::Float64(v), Value::Null) => v.push(0.0),
            (ColumnValues::String { offsets, data }, Value::Null) => offsets.push(data.len() as u32),
            (values, value) => panic!("a {value:?} does not fit a column of {values:?}"),
        }
        self.rows += 1;
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The value at `row`, for tests.
    pub fn get(&self, row: usize) -> Value<'_> {
        if self.valid.get(row) == Some(&false) {
            return Value::Null;
        }
        match &self.values {
            ColumnValues::Boolean(v) => Value::Boolean(v[row]),
            ColumnValues::Int32(v) => Value::Int32(v[row]),
            ColumnValues::Int64(v) => Value::Int64(v[row]),
            ColumnValues::Float64(v) => Value::Float64(v[row]),
            ColumnValues::Date(v) => Value::Date(v[row]),
            ColumnValues::Timestamp(v) => Value::Timestamp(v[row]),
            ColumnValues::Instant(v) => Value::Instant(v[row]),
            ColumnValues::String { offsets, data } => {
                let bytes = &data[offsets[row] as usize..offsets[row + 1] as usize];
                Value::String(std::str::from_utf8(bytes).expect("pushed as str"))
            }
        }
    }
}

/// Rows of one table being built.
#[derive(Debug, Clone, PartialEq)]
pub struct TableBuilder {
    /// Table name.
    pub table: String,
    /// Payload index of each row.
    pub inputs: Vec<u32>,
    /// Columns in schema order.
    pub columns: Vec<ColumnBuilder>,
}

impl TableBuilder {
    /// An empty table with the schema's columns.
    pub fn new(schema: &TableSchema) -> Self {
        Self {
            table: schema.name.clone(),
            inputs: Vec::new(),
            columns: schema.columns.iter().map(|c| ColumnBuilder::new(c.column_type)).collect(),
        }
    }

    /// Appends one row from payload `input`.
    ///
    /// # Panics
    /// When `row` does not have one value of the right type per column.
    pub fn push_row(&mut self, input: u32, row: &[Value<'_>]) {
        assert_eq!(row.len(), self.columns.len(), "one value per column of `{}`", self.table);
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.push(value);
        }
        self.inputs.push(input);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// What `transform` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// Rows per table.
    pub tables: Vec<TableBuilder>,
    /// Records that produced no row.
    pub rejected: Vec<Rejection>,
}

impl Output {
    /// Rows of table `name`.
    pub fn table(&self, name: &str) -> Option<&TableBuilder> {
        self.tables.iter().find(|t| t.table == name)
    }
}

/// Where one canonical record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Payload index in the batch.
    pub input: u32,
    /// Record index within the payload.
    pub record: u32,
    /// Partition key (e.g. the patient id).
    pub key: Option<String>,
    /// The record's own identity from its sender (HL7 v2 MSH-10), if it has one: the host
    /// stores a record whose id the source already stored only once.
    pub id: Option<String>,
}

/// What `split` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SplitOutput {
    /// MIME type of the canonical records.
    pub content_type: String,
    /// Canonical records back to back.
    pub data: Vec<u8>,
    /// End offset of each record.
    pub ends: Vec<u32>,
    /// Origin of each record.
    pub origins: Vec<Origin>,
    /// Records not accepted.
    pub rejected: Vec<Rejection>,
}

impl SplitOutput {
    /// An empty result whose records will be of `content_type`.
    pub fn new(content_type: &str) -> Self {
        Self { content_type: content_type.into(), ..Self::default() }
    }

    /// Appends one canonical record.
    pub fn push(&mut self, record: &[u8], origin: Origin) {
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len() as u32);
        self.origins.push(origin);
    }

    /// The canonical records, for tests.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let record = &self.data[start..end as usize];
            start = end as usize;
            record
        })
    }
}
