//! Running a chunk of log records through the source's plugin: rows per table, dead letters for
//! what the plugin rejects, and record-by-record retry of a batch that fails as a whole.

use arrow::array::RecordBatch;
use sluice_log::{DeadLetter, StoredRecord};
use sluice_runtime::{BatchBuilder, LoadError, Source, SourceError};

use crate::convert::{Producer, table_batch};

/// What a chunk of records became.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rows per table, in the order produced.
    pub tables: Vec<(String, RecordBatch)>,
    /// Records that produced no row, with why.
    pub dead: Vec<DeadLetter>,
    /// Number of batches that failed whole and were retried record by record.
    pub retried_batches: usize,
}

/// Now, in microseconds since 1970-01-01 UTC.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Transforms `records` (one log partition, in offset order). Blocking: call from a blocking
/// thread. Fails only when the source's plugin is not loaded (nothing can be done then).
pub fn transform(source: &Source, records: &[StoredRecord]) -> Result<Outcome, LoadError> {
    let mut outcome = Outcome::default();
    let mut start = 0;
    while start < records.len() {
        let content_type = &records[start].record.content_type;
        let end = records[start..]
            .iter()
            .position(|r| &r.record.content_type != content_type)
            .map_or(records.len(), |n| start + n);
        run(source, &records[start..end], &mut outcome)?;
        start = end;
    }
    Ok(outcome)
}

fn dead(record: &StoredRecord, reason: String, field: Option<String>, plugin: &str) -> DeadLetter {
    DeadLetter { record: record.clone(), reason, field, plugin: plugin.to_string(), failed_at_us: now_us() }
}

fn run(source: &Source, records: &[StoredRecord], outcome: &mut Outcome) -> Result<(), LoadError> {
    let mut builder = BatchBuilder::new(&records[0].record.content_type);
    for record in records {
        builder.push(&record.record.payload);
    }
    let batch = builder.finish();
    match source.transform(&batch) {
        Ok(handled) => {
            let manifest = handled.plugin.manifest();
            let producer = Producer { plugin: manifest.id(), digest: handled.plugin.digest().to_string() };
            let mut refused = vec![false; records.len()];
            for rejection in handled.output.rejected {
                let input = rejection.input as usize;
                if !std::mem::replace(&mut refused[input], true) {
                    outcome.dead.push(dead(&records[input], rejection.reason, rejection.field, &producer.plugin));
                }
            }
            let inputs: Vec<&StoredRecord> = records.iter().collect();
            for rows in handled.output.tables {
                let table = manifest.table(&rows.table).expect("validated: the table is in the manifest").clone();
                let name = rows.table.clone();
                match table_batch(&table, rows, &inputs, &producer) {
                    Ok(batch) => outcome.tables.push((name, batch)),
                    Err(error) => {
                        let reason = format!("cannot build rows of table `{name}`: {error}");
                        outcome.dead.extend(records.iter().map(|r| dead(r, reason.clone(), None, &producer.plugin)));
                    }
                }
            }
            Ok(())
        }
        Err(SourceError::Unloaded(error)) => Err(error),
        Err(SourceError::Call(error)) if records.len() > 1 => {
            tracing::warn!(%error, records = records.len(), "batch failed; retrying record by record");
            outcome.retried_batches += 1;
            for one in records.chunks(1) {
                run(source, one, outcome)?;
            }
            Ok(())
        }
        Err(SourceError::Call(error)) => {
            let plugin = source.plugin().map(|p| p.id()).unwrap_or_default();
            outcome.dead.push(dead(&records[0], error.to_string(), None, &plugin));
            Ok(())
        }
    }
}
