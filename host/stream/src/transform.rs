//! Running a chunk of log records through the source's plugin: rows per table, dead letters for
//! what the plugin rejects, and record-by-record retry of a batch that fails as a whole.

use arrow::array::RecordBatch;
use sluice_log::{DeadLetter, StoredRun};
use sluice_runtime::{BatchBuilder, LoadError, Source, SourceError};

use crate::convert::{Input, Producer, table_batch};

/// What a chunk of runs became.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rows per table, in the order produced.
    pub tables: Vec<(String, RecordBatch)>,
    /// Records that produced no row, with why.
    pub dead: Vec<DeadLetter>,
    /// Number of batches that failed whole and were retried record by record.
    pub retried_batches: usize,
}

/// The dead letter's reason for a record `transform` gave neither a row nor a rejection (the
/// contract asks for one or the other: a record is never dropped without a word).
pub const NO_OUTCOME: &str = "the plugin's transform gave this record no row and no rejection";

/// One record of a run.
#[derive(Clone, Copy)]
struct Record<'a> {
    run: &'a StoredRun,
    index: usize,
}

impl Record<'_> {
    fn payload(&self) -> &[u8] {
        self.run.run.payload(self.index)
    }

    fn input(&self) -> Input<'_> {
        Input { position: self.run.position(self.index), provenance: &self.run.provenance }
    }

    fn dead(&self, reason: String, field: Option<String>, plugin: &str) -> DeadLetter {
        DeadLetter::now(self.run.record(self.index), reason, field, plugin.to_string())
    }
}

/// Transforms `runs` (one log partition, in offset order): each stretch of runs of one content
/// type goes to the plugin as one batch, the runs' payloads copied side by side once. Blocking:
/// call from a blocking thread. Fails only when the source's plugin is not loaded (nothing can
/// be done then).
pub fn transform(source: &Source, runs: &[StoredRun]) -> Result<Outcome, LoadError> {
    let mut outcome = Outcome::default();
    let mut start = 0;
    while start < runs.len() {
        let content_type = &runs[start].run.content_type;
        let end =
            runs[start..].iter().position(|r| &r.run.content_type != content_type).map_or(runs.len(), |n| start + n);
        let records: Vec<Record<'_>> =
            runs[start..end].iter().flat_map(|run| (0..run.len()).map(move |index| Record { run, index })).collect();
        if !records.is_empty() {
            call(source, content_type, &records, &mut outcome)?;
        }
        start = end;
    }
    Ok(outcome)
}

fn call(source: &Source, content_type: &str, records: &[Record<'_>], outcome: &mut Outcome) -> Result<(), LoadError> {
    let bytes = records.iter().map(|r| r.payload().len()).sum();
    let mut builder = BatchBuilder::with_capacity(content_type, records.len(), bytes);
    // Each stretch of consecutive records of one run in one copy.
    let mut next = 0;
    while next < records.len() {
        let Record { run, index: start } = records[next];
        let stretch = records[next..]
            .iter()
            .enumerate()
            .take_while(|(i, r)| std::ptr::eq(r.run, run) && r.index == start + i)
            .count();
        builder.push_packed(&run.run.payloads, &run.run.ends, start..start + stretch);
        next += stretch;
    }
    let batch = builder.finish();
    match source.transform(&batch) {
        Ok(handled) => {
            let manifest = handled.plugin.manifest();
            let producer = Producer { plugin: manifest.id(), digest: handled.plugin.digest().to_string() };
            let unanswered = handled.output.unanswered(records.len());
            let mut refused = vec![false; records.len()];
            for rejection in handled.output.rejected {
                let input = rejection.input as usize;
                if !std::mem::replace(&mut refused[input], true) {
                    outcome.dead.push(records[input].dead(rejection.reason, rejection.field, &producer.plugin));
                }
            }
            for input in unanswered {
                outcome.dead.push(records[input as usize].dead(NO_OUTCOME.into(), None, &producer.plugin));
            }
            let inputs: Vec<Input<'_>> = records.iter().map(Record::input).collect();
            for rows in handled.output.tables {
                let table = manifest.table(&rows.table).expect("validated: the table is in the manifest").clone();
                let name = rows.table.clone();
                match table_batch(&table, rows, &inputs, &producer) {
                    Ok(batch) => outcome.tables.push((name, batch)),
                    Err(error) => {
                        let reason = format!("cannot build rows of table `{name}`: {error}");
                        outcome.dead.extend(records.iter().map(|r| r.dead(reason.clone(), None, &producer.plugin)));
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
                call(source, content_type, one, outcome)?;
            }
            Ok(())
        }
        Err(SourceError::Call(error)) => {
            let plugin = source.plugin().map(|p| p.id()).unwrap_or_default();
            outcome.dead.push(records[0].dead(error.to_string(), None, &plugin));
            Ok(())
        }
    }
}
