//! The rows of one log partition waiting for their commit.

use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sluice_warehouse::Segment;

use crate::StreamConfig;

/// Rows of one log partition since its last commit.
#[derive(Debug)]
pub struct OpenSegment {
    /// First offset covered.
    pub first: u64,
    /// Last offset covered.
    pub last: u64,
    /// Rows per table, in first-seen order.
    tables: Vec<(String, SchemaRef, Vec<RecordBatch>)>,
    /// Rows held.
    pub rows: usize,
    /// Arrow memory held.
    pub bytes: usize,
    /// When the first record arrived.
    pub opened: Instant,
    /// When the last records arrived.
    pub touched: Instant,
}

impl OpenSegment {
    /// A segment starting at `first`.
    pub fn new(first: u64) -> Self {
        let now = Instant::now();
        Self { first, last: first, tables: Vec::new(), rows: 0, bytes: 0, opened: now, touched: now }
    }

    /// Whether every batch in `tables` fits the schema this segment holds for its table.
    pub fn accepts(&self, tables: &[(String, RecordBatch)]) -> bool {
        tables.iter().all(|(name, batch)| {
            self.tables.iter().find(|(t, _, _)| t == name).is_none_or(|(_, schema, _)| *schema == batch.schema())
        })
    }

    /// Adds rows, and extends the covered range to `last`.
    pub fn push(&mut self, last: u64, tables: Vec<(String, RecordBatch)>) {
        self.last = last;
        self.touched = Instant::now();
        for (name, batch) in tables {
            self.rows += batch.num_rows();
            self.bytes += batch.get_array_memory_size();
            match self.tables.iter_mut().find(|(t, _, _)| *t == name) {
                Some((_, _, batches)) => batches.push(batch),
                None => self.tables.push((name, batch.schema(), vec![batch])),
            }
        }
    }

    /// The schema of each table held.
    pub fn schemas(&self) -> Vec<(String, SchemaRef)> {
        self.tables.iter().map(|(name, schema, _)| (name.clone(), schema.clone())).collect()
    }

    /// When this segment is due by age: `roll_interval` after its first records, or
    /// `roll_idle` after its last ones, whichever comes first.
    pub fn deadline(&self, config: &StreamConfig) -> Instant {
        (self.opened + config.roll_interval).min(self.touched + config.roll_idle())
    }

    /// The warehouse commit for this segment, written under `token`.
    pub fn to_commit(&self, source: &str, partition: u32, token: &str) -> Segment {
        Segment {
            source: source.to_string(),
            partition,
            first: self.first,
            last: self.last,
            tables: self.tables.iter().map(|(name, _, batches)| (name.clone(), batches.clone())).collect(),
            token: token.to_string(),
        }
    }
}
