//! Hive partitioning: which `<key>=<value>` directory each row goes to.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Date32Type, TimeUnit, TimestampMicrosecondType};

use crate::error::WarehouseError;

/// The value Hive and Trino use for a NULL partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// How a table is partitioned: by the calendar date (UTC) of a date or timestamp column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    /// Directory key, e.g. `ingest_date` in `ingest_date=2026-11-27`.
    pub key: String,
    /// The date or timestamp column whose date is the value.
    pub column: String,
}

impl Default for PartitionSpec {
    /// Partitioned by the date the API received the record.
    fn default() -> Self {
        Self { key: "ingest_date".into(), column: "ingest_received_at".into() }
    }
}

impl PartitionSpec {
    /// Splits `batch` into one batch per partition value, rows in their original order.
    pub fn split(&self, table: &str, batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>, WarehouseError> {
        let invalid = |reason: String| WarehouseError::InvalidRows { table: table.to_string(), reason };
        let column = batch
            .column_by_name(&self.column)
            .ok_or_else(|| invalid(format!("no partition column `{}`", self.column)))?;
        let days: Vec<Option<i64>> = match column.data_type() {
            DataType::Date32 => column.as_primitive::<Date32Type>().iter().map(|d| d.map(i64::from)).collect(),
            DataType::Timestamp(TimeUnit::Microsecond, _) => column
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|t| t.map(|t| t.div_euclid(MICROS_PER_DAY)))
                .collect(),
            other => return Err(invalid(format!("partition column `{}` is {other}, not a date", self.column))),
        };
        let mut groups: BTreeMap<Option<i64>, Vec<u32>> = BTreeMap::new();
        for (row, day) in days.iter().enumerate() {
            groups.entry(*day).or_default().push(row as u32);
        }
        if groups.len() == 1 {
            let (day, _) = groups.into_iter().next().expect("one group");
            return Ok(vec![(format_day(day), batch.clone())]);
        }
        groups
            .into_iter()
            .map(|(day, rows)| {
                let taken = take_record_batch(batch, &UInt32Array::from(rows))
                    .map_err(|e| invalid(format!("cannot split by partition: {e}")))?;
                Ok((format_day(day), taken))
            })
            .collect()
    }

    /// The directory name for `value`.
    pub fn directory(&self, value: &str) -> String {
        format!("{}={value}", self.key)
    }
}

fn format_day(day: Option<i64>) -> String {
    day.and_then(|d| i32::try_from(d).ok())
        .and_then(|d| chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163))
        .map_or_else(|| HIVE_DEFAULT_PARTITION.to_string(), |date| date.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn rows_split_by_utc_date_and_null_goes_to_the_default_partition() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, false),
            Field::new("ingest_received_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        ]));
        // 2026-11-27T23:59:59.999999Z, 2026-11-28T00:00:00Z, NULL, 1969-12-31T23:00:00Z
        let times = vec![Some(1_795_823_999_999_999), Some(1_795_824_000_000_000), None, Some(-3_600_000_000)];
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![0, 1, 2, 3])),
                Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
            ],
        )
        .unwrap();
        let parts = PartitionSpec::default().split("t", &batch).unwrap();
        let summary: Vec<(String, Vec<i32>)> = parts
            .iter()
            .map(|(value, b)| {
                (value.clone(), b.column(0).as_primitive::<arrow::datatypes::Int32Type>().values().to_vec())
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (HIVE_DEFAULT_PARTITION.to_string(), vec![2]),
                ("1969-12-31".to_string(), vec![3]),
                ("2026-11-27".to_string(), vec![0]),
                ("2026-11-28".to_string(), vec![1]),
            ]
        );
    }

    #[test]
    fn a_missing_or_non_date_column_is_an_error() {
        let schema = Arc::new(Schema::new(vec![Field::new("ingest_received_at", DataType::Int32, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![1]))]).unwrap();
        let error = PartitionSpec::default().split("t", &batch).unwrap_err().to_string();
        assert_eq!(error, "invalid rows for table `t`: partition column `ingest_received_at` is Int32, not a date");
        let spec = PartitionSpec { key: "event_date".into(), column: "missing".into() };
        let error = spec.split("t", &batch).unwrap_err().to_string();
        assert_eq!(error, "invalid rows for table `t`: no partition column `missing`");
    }
}
