//! Validated, host-side forms of what plugins return.
//!
//! A plugin is untrusted: everything it returns is checked against its manifest and the batch
//! it was given before the host uses it (lengths, types, offsets, UTF-8, NULLs in non-nullable
//! columns, input indexes).

use serde::Serialize;

use crate::batch::Batch;
use crate::bindings::types;
use sluice_contract::{ColumnValues, Manifest, Rejection};

/// One value of a column, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// NULL.
    Null,
    /// A boolean.
    Boolean(bool),
    /// An integer of either width.
    Integer(i64),
    /// A double.
    Float(f64),
    /// A string.
    String(&'a str),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00, wall clock.
    Timestamp(i64),
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    Instant(i64),
}

/// Value `row` of `values`.
fn value(values: &ColumnValues, row: usize) -> Cell<'_> {
    match values {
        ColumnValues::Boolean(v) => Cell::Boolean(v[row]),
        ColumnValues::Int32(v) => Cell::Integer(v[row].into()),
        ColumnValues::Int64(v) => Cell::Integer(v[row]),
        ColumnValues::Float64(v) => Cell::Float(v[row]),
        ColumnValues::Date(v) => Cell::Date(v[row]),
        ColumnValues::Timestamp(v) => Cell::Timestamp(v[row]),
        ColumnValues::Instant(v) => Cell::Instant(v[row]),
        ColumnValues::String { offsets, data } => {
            let bytes = &data[offsets[row] as usize..offsets[row + 1] as usize];
            // Validated when the output was received.
            Cell::String(std::str::from_utf8(bytes).unwrap_or_default())
        }
    }
}

fn values_from_wit(values: types::ColumnValues) -> ColumnValues {
    match values {
        types::ColumnValues::Boolean(v) => ColumnValues::Boolean(v),
        types::ColumnValues::Int32(v) => ColumnValues::Int32(v),
        types::ColumnValues::Int64(v) => ColumnValues::Int64(v),
        types::ColumnValues::Float64(v) => ColumnValues::Float64(v),
        types::ColumnValues::String(s) => ColumnValues::String { offsets: s.offsets, data: s.data },
        types::ColumnValues::Date(v) => ColumnValues::Date(v),
        types::ColumnValues::Timestamp(v) => ColumnValues::Timestamp(v),
        types::ColumnValues::Instant(v) => ColumnValues::Instant(v),
    }
}

/// One column of output rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnData {
    /// One flag per row, false where NULL; empty when no value is NULL.
    pub valid: Vec<bool>,
    /// The values.
    pub values: ColumnValues,
}

impl ColumnData {
    /// Value of `row`, `Cell::Null` where it is NULL.
    ///
    /// # Panics
    /// When `row` is out of range.
    pub fn cell(&self, row: usize) -> Cell<'_> {
        if self.valid.get(row) == Some(&false) { Cell::Null } else { value(&self.values, row) }
    }

    /// Number of NULL values.
    pub fn null_count(&self) -> usize {
        self.valid.iter().filter(|v| !**v).count()
    }
}

/// Rows of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    /// Table name, one of the manifest's.
    pub table: String,
    /// For each row, the index of the payload it came from.
    pub inputs: Vec<u32>,
    /// Columns in schema order.
    pub columns: Vec<ColumnData>,
}

impl TableRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// What `transform` returned, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transformed {
    /// Rows per table, tables in the order the plugin returned them.
    pub tables: Vec<TableRows>,
    /// Records that produced no row.
    pub rejected: Vec<Rejection>,
}

impl Transformed {
    /// Rows of table `name`, if any were produced.
    pub fn table(&self, name: &str) -> Option<&TableRows> {
        self.tables.iter().find(|t| t.table == name)
    }

    /// Inputs, of the `inputs` the batch held, given neither a row nor a rejection (the contract
    /// asks for one or the other), in order.
    pub fn unanswered(&self, inputs: usize) -> Vec<u32> {
        let mut answered = vec![false; inputs];
        for &input in self.tables.iter().flat_map(|t| &t.inputs).chain(self.rejected.iter().map(|r| &r.input)) {
            if let Some(answered) = answered.get_mut(input as usize) {
                *answered = true;
            }
        }
        (0..inputs as u32).filter(|&input| !answered[input as usize]).collect()
    }
}

/// Where one accepted record of a split came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// Index of the payload in the batch.
    pub input: u32,
    /// Index of the record within that payload.
    pub record: u32,
    /// Partition key, if the plugin named one.
    pub key: Option<String>,
    /// The record's own identity from its sender (HL7 v2 MSH-10), if the plugin named one
    /// (contract 0.2.0): a record whose id the source already stored is not stored again.
    pub id: Option<String>,
}

/// What `split` returned, validated.
#[derive(Debug, Clone)]
pub struct SplitRecords {
    /// Accepted records in canonical form, one payload each.
    pub records: Batch,
    /// Where each record came from.
    pub origins: Vec<Origin>,
    /// Records not accepted.
    pub rejected: Vec<Rejection>,
}

fn rejections_from_wit(rejected: Vec<types::Rejection>, inputs: usize) -> Result<Vec<Rejection>, String> {
    rejected
        .into_iter()
        .map(|r| {
            if r.input as usize >= inputs {
                return Err(format!("a rejection names input {} of a batch of {inputs}", r.input));
            }
            Ok(Rejection { input: r.input, record: r.record, reason: r.reason, field: r.field })
        })
        .collect()
}

fn rejections_size(rejected: &[types::Rejection]) -> usize {
    rejected.iter().map(|r| 8 + r.reason.len() + r.field.as_ref().map_or(0, String::len)).sum()
}

/// Bytes a `transform` result occupies, to enforce the output cap.
pub(crate) fn transformed_size(output: &types::Transformed) -> usize {
    let tables: usize = output
        .tables
        .iter()
        .map(|t| {
            t.table.len()
                + t.inputs.len() * 4
                + t.columns.iter().map(|c| c.valid.len() + wit_byte_size(&c.values)).sum::<usize>()
        })
        .sum();
    tables + rejections_size(&output.rejected)
}

/// Bytes a `split` result occupies, to enforce the output cap.
pub(crate) fn split_size(output: &types::SplitRecords) -> usize {
    output.records.data.len()
        + output.records.ends.len() * 4
        + output
            .origins
            .iter()
            .map(|o| 8 + o.key.as_ref().map_or(0, String::len) + o.id.as_ref().map_or(0, String::len))
            .sum::<usize>()
        + rejections_size(&output.rejected)
}

/// Bytes one column's values occupy as the plugin returned them.
fn wit_byte_size(values: &types::ColumnValues) -> usize {
    match values {
        types::ColumnValues::Boolean(v) => v.len(),
        types::ColumnValues::Int32(v) | types::ColumnValues::Date(v) => v.len() * 4,
        types::ColumnValues::Int64(v) | types::ColumnValues::Timestamp(v) | types::ColumnValues::Instant(v) => {
            v.len() * 8
        }
        types::ColumnValues::Float64(v) => v.len() * 8,
        types::ColumnValues::String(s) => s.offsets.len() * 4 + s.data.len(),
    }
}

impl Transformed {
    /// Converts and validates a `transform` result against the manifest and the batch size.
    pub(crate) fn from_wit(output: types::Transformed, manifest: &Manifest, inputs: usize) -> Result<Self, String> {
        let mut tables: Vec<TableRows> = Vec::with_capacity(output.tables.len());
        for rows in output.tables {
            let schema = manifest
                .table(&rows.table)
                .ok_or_else(|| format!("table `{}` is not in the manifest", rows.table.escape_debug()))?;
            if tables.iter().any(|t| t.table == rows.table) {
                return Err(format!("table `{}` is returned twice", rows.table));
            }
            let count = rows.inputs.len();
            if let Some(bad) = rows.inputs.iter().find(|&&i| i as usize >= inputs) {
                return Err(format!("a row of `{}` names input {bad} of a batch of {inputs}", rows.table));
            }
            if rows.columns.len() != schema.columns.len() {
                return Err(format!(
                    "table `{}` has {} columns, the manifest declares {}",
                    rows.table,
                    rows.columns.len(),
                    schema.columns.len()
                ));
            }
            let mut columns = Vec::with_capacity(rows.columns.len());
            for (column, declared) in rows.columns.into_iter().zip(&schema.columns) {
                let values = values_from_wit(column.values);
                let at = format!("column `{}.{}`", rows.table, declared.name);
                if values.column_type() != declared.column_type {
                    return Err(format!(
                        "{at} holds {} values, the manifest declares {}",
                        values.column_type(),
                        declared.column_type
                    ));
                }
                if values.len() != count {
                    return Err(format!("{at} has {} values for {count} rows", values.len()));
                }
                if !column.valid.is_empty() && column.valid.len() != count {
                    return Err(format!("{at} has {} validity flags for {count} rows", column.valid.len()));
                }
                if !declared.nullable && column.valid.contains(&false) {
                    return Err(format!("{at} is not nullable but holds NULL"));
                }
                if let ColumnValues::String { offsets, data } = &values {
                    check_strings(offsets, data).map_err(|e| format!("{at}: {e}"))?;
                }
                columns.push(ColumnData { valid: column.valid, values });
            }
            tables.push(TableRows { table: rows.table, inputs: rows.inputs, columns });
        }
        let rejected = rejections_from_wit(output.rejected, inputs)?;
        Ok(Self { tables, rejected })
    }
}

impl SplitRecords {
    /// Converts and validates a `split` result against the batch size and the manifest: the
    /// canonical records must be of a content type the plugin declares, or `transform` would
    /// later refuse every one of them (a dead letter after a 202).
    pub(crate) fn from_wit(output: types::SplitRecords, inputs: usize, manifest: &Manifest) -> Result<Self, String> {
        let records = Batch(output.records);
        records.check().map_err(|e| format!("split records: {e}"))?;
        if !records.is_empty() && !manifest.accepts(&records.0.content_type) {
            return Err(format!(
                "split returned records of content type `{}`, which the manifest does not declare (it declares {})",
                records.0.content_type.escape_debug(),
                manifest.content_types.join(", ")
            ));
        }
        if records.len() != output.origins.len() {
            return Err(format!("split returned {} records but {} origins", records.len(), output.origins.len()));
        }
        let origins = output
            .origins
            .into_iter()
            .map(|o| {
                if o.input as usize >= inputs {
                    return Err(format!("a split record names input {} of a batch of {inputs}", o.input));
                }
                Ok(Origin { input: o.input, record: o.record, key: o.key, id: o.id })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rejected = rejections_from_wit(output.rejected, inputs)?;
        let outcomes = origins.iter().map(|o| (o.input, o.record)).chain(rejected.iter().map(|r| (r.input, r.record)));
        if let Some((input, record)) = given_twice(outcomes) {
            return Err(format!(
                "split gave record {record} of input {input} more than one outcome (each record is accepted once \
                 or rejected once)"
            ));
        }
        Ok(Self { records, origins, rejected })
    }
}

/// The first (input, record) pair given more than once, if any. Plugins give them in order,
/// which is checked in one pass; only out-of-order outcomes are sorted.
fn given_twice(outcomes: impl Iterator<Item = (u32, u32)> + Clone) -> Option<(u32, u32)> {
    let mut previous = None;
    let in_order = outcomes.clone().all(|pair| {
        let increasing = previous.is_none_or(|p| p < pair);
        previous = Some(pair);
        increasing
    });
    if in_order {
        return None;
    }
    let mut sorted: Vec<(u32, u32)> = outcomes.collect();
    sorted.sort_unstable();
    sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

fn check_strings(offsets: &[u32], data: &[u8]) -> Result<(), String> {
    if offsets.first() != Some(&0) {
        return Err("string offsets must start at 0".into());
    }
    if offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err("string offsets decrease".into());
    }
    if offsets.last().map(|&o| o as usize) != Some(data.len()) {
        return Err("string offsets do not end at the end of the data".into());
    }
    let text = std::str::from_utf8(data).map_err(|e| format!("string data is not UTF-8: {e}"))?;
    if let Some(bad) = offsets.iter().find(|&&o| !text.is_char_boundary(o as usize)) {
        return Err(format!("string offset {bad} splits a UTF-8 character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_offsets_are_checked() {
        assert!(check_strings(&[0, 1, 3], b"abc").is_ok());
        assert_eq!(check_strings(&[1, 3], b"abc").unwrap_err(), "string offsets must start at 0");
        assert_eq!(check_strings(&[0, 2, 1, 3], b"abc").unwrap_err(), "string offsets decrease");
        assert_eq!(check_strings(&[0, 2], b"abc").unwrap_err(), "string offsets do not end at the end of the data");
        assert_eq!(check_strings(&[0, 1, 2], "é".as_bytes()).unwrap_err(), "string offset 1 splits a UTF-8 character");
        assert!(check_strings(&[0, 1], &[0xff]).unwrap_err().starts_with("string data is not UTF-8"));
    }

    #[test]
    fn a_record_given_two_outcomes_is_found_in_or_out_of_order() {
        assert_eq!(given_twice([(0, 0), (0, 1), (1, 0)].into_iter()), None);
        assert_eq!(given_twice([(0, 0), (0, 2), (0, 1)].into_iter()), None, "accepted 0 and 2, rejected 1");
        assert_eq!(given_twice([(0, 0), (0, 1), (0, 1)].into_iter()), Some((0, 1)), "accepted twice");
        assert_eq!(given_twice([(0, 3), (0, 1), (0, 3)].into_iter()), Some((0, 3)), "accepted and rejected");
        assert_eq!(given_twice([(1, 0), (0, 0)].into_iter()), None, "one record of each of two inputs");
    }

    #[test]
    fn unanswered_inputs_are_those_with_neither_a_row_nor_a_rejection() {
        let output = Transformed {
            tables: vec![TableRows { table: "t".into(), inputs: vec![0, 0, 3], columns: Vec::new() }],
            rejected: vec![Rejection { input: 2, record: 0, reason: "no".into(), field: None }],
        };
        assert_eq!(output.unanswered(5), vec![1, 4]);
        assert_eq!(output.unanswered(0), Vec::<u32>::new());
    }
}
