//! The shapes of what a plugin returns, as both sides hold them.

use crate::ColumnType;

/// Why one record was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Rejection {
    /// Index of the payload in the batch.
    pub input: u32,
    /// Index of the record within the payload.
    pub record: u32,
    /// What is wrong; never quotes record contents (they may identify a patient).
    pub reason: String,
    /// The field at fault, as the sender names it, when one is.
    pub field: Option<String>,
}

/// The values of one column; see `column-values` in `wit/plugin.wit`. A NULL row holds a zero
/// value here; which rows are NULL travels beside the values.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// Booleans.
    Boolean(Vec<bool>),
    /// 32-bit integers.
    Int32(Vec<i32>),
    /// 64-bit integers.
    Int64(Vec<i64>),
    /// Doubles.
    Float64(Vec<f64>),
    /// UTF-8 strings: value `i` is `data[offsets[i]..offsets[i + 1]]`.
    String {
        /// `rows + 1` offsets, starting at 0.
        offsets: Vec<u32>,
        /// UTF-8 bytes.
        data: Vec<u8>,
    },
    /// Days since 1970-01-01.
    Date(Vec<i32>),
    /// Microseconds since 1970-01-01 00:00:00, wall clock.
    Timestamp(Vec<i64>),
    /// Microseconds since 1970-01-01 00:00:00 UTC: points in time.
    Instant(Vec<i64>),
}

impl ColumnValues {
    /// No values, of `column_type`.
    pub fn empty(column_type: ColumnType) -> Self {
        match column_type {
            ColumnType::Boolean => Self::Boolean(Vec::new()),
            ColumnType::Int32 => Self::Int32(Vec::new()),
            ColumnType::Int64 => Self::Int64(Vec::new()),
            ColumnType::Float64 => Self::Float64(Vec::new()),
            ColumnType::String => Self::String { offsets: vec![0], data: Vec::new() },
            ColumnType::Date => Self::Date(Vec::new()),
            ColumnType::Timestamp => Self::Timestamp(Vec::new()),
            ColumnType::Instant => Self::Instant(Vec::new()),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Self::Boolean(v) => v.len(),
            Self::Int32(v) | Self::Date(v) => v.len(),
            Self::Int64(v) | Self::Timestamp(v) | Self::Instant(v) => v.len(),
            Self::Float64(v) => v.len(),
            Self::String { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column type these values are for.
    pub fn column_type(&self) -> ColumnType {
        match self {
            Self::Boolean(_) => ColumnType::Boolean,
            Self::Int32(_) => ColumnType::Int32,
            Self::Int64(_) => ColumnType::Int64,
            Self::Float64(_) => ColumnType::Float64,
            Self::String { .. } => ColumnType::String,
            Self::Date(_) => ColumnType::Date,
            Self::Timestamp(_) => ColumnType::Timestamp,
            Self::Instant(_) => ColumnType::Instant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_have_their_type_and_no_value() {
        for column_type in ColumnType::ALL {
            let values = ColumnValues::empty(column_type);
            assert_eq!(values.column_type(), column_type);
            assert!(values.is_empty());
        }
    }
}
