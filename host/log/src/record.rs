//! What the log holds.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where an accepted record came from. Travels with every record (Kafka headers, spool column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Source name.
    pub source: String,
    /// `name@version` of the plugin that validated it.
    pub plugin: String,
    /// Hex SHA-256 of that plugin's `.wasm`.
    pub plugin_digest: String,
    /// Submitting user.
    pub user: String,
    /// When the API received it: microseconds since 1970-01-01 UTC.
    pub received_at_us: i64,
    /// Request id, as returned to the client.
    pub request_id: String,
}

/// One record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Partition key (e.g. patient id): records with the same key keep their order.
    pub key: Option<String>,
    /// MIME type of `payload`.
    pub content_type: String,
    /// The canonical record.
    pub payload: Vec<u8>,
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Partition within the source's stream.
    pub partition: u32,
    /// Offset within the partition, increasing (the spool has no gaps; Kafka transaction
    /// markers take offsets of their own).
    pub offset: u64,
}

/// Records of one content type packed side by side, the way plugins take them: one buffer of
/// payloads with each payload's end offset, and a partition key per record. What one request
/// appends, and what the log gives back per partition: the unit of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    /// MIME type of every payload.
    pub content_type: String,
    /// The payloads, one after the other.
    pub payloads: Vec<u8>,
    /// Each payload's end in `payloads`, non-decreasing, the last one `payloads.len()`.
    pub ends: Vec<u32>,
    /// Each record's partition key (e.g. patient id): records with the same key keep their order.
    pub keys: Vec<Option<String>>,
}

/// Why packed parts do not make a [`Run`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRun {
    /// The end offsets do not describe the payload buffer.
    #[error("payload ends do not match the payloads")]
    Ends,
    /// Not one key per record.
    #[error("{keys} keys for {records} records")]
    Keys {
        /// Keys given.
        keys: usize,
        /// Records in the run.
        records: usize,
    },
}

impl Run {
    /// An empty run of `content_type`.
    pub fn new(content_type: impl Into<String>) -> Self {
        Self { content_type: content_type.into(), ..Self::default() }
    }

    /// A run of one record.
    pub fn single(key: Option<String>, content_type: impl Into<String>, payload: &[u8]) -> Self {
        let mut run = Self::new(content_type);
        run.push(key, payload);
        run
    }

    /// A run from its packed parts, checked.
    pub fn from_parts(
        content_type: String,
        payloads: Vec<u8>,
        ends: Vec<u32>,
        keys: Vec<Option<String>>,
    ) -> Result<Self, BadRun> {
        if keys.len() != ends.len() {
            return Err(BadRun::Keys { keys: keys.len(), records: ends.len() });
        }
        if !ends.is_sorted() || ends.last().map_or(0, |&end| end as usize) != payloads.len() {
            return Err(BadRun::Ends);
        }
        Ok(Self { content_type, payloads, ends, keys })
    }

    /// Appends one record.
    ///
    /// # Panics
    /// When the payloads would pass 4 GiB, which 32-bit end offsets cannot address.
    pub fn push(&mut self, key: Option<String>, payload: &[u8]) {
        self.payloads.extend_from_slice(payload);
        self.ends.push(u32::try_from(self.payloads.len()).expect("a run is limited to 4 GiB"));
        self.keys.push(key);
    }

    /// Records in the run.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the run holds no record.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Record `index`'s payload.
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn payload(&self, index: usize) -> &[u8] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
        &self.payloads[start..self.ends[index] as usize]
    }

    /// Record `index`'s key.
    pub fn key(&self, index: usize) -> Option<&str> {
        self.keys[index].as_deref()
    }

    /// Record `index`, copied out.
    pub fn record(&self, index: usize) -> LogRecord {
        LogRecord {
            key: self.keys[index].clone(),
            content_type: self.content_type.clone(),
            payload: self.payload(index).to_vec(),
        }
    }

    /// Keeps the first `at` records and returns the rest as a run of their own (the rest is
    /// copied; the kept part keeps its buffer).
    ///
    /// # Panics
    /// When `at` is past the last record.
    pub fn split_off(&mut self, at: usize) -> Run {
        let tail = self.tail(at);
        let end = if at == 0 { 0 } else { self.ends[at - 1] as usize };
        self.payloads.truncate(end);
        self.ends.truncate(at);
        self.keys.truncate(at);
        tail
    }

    /// The records from `index` on, as a run of their own (copied).
    pub fn tail(&self, index: usize) -> Run {
        let mut tail = Run::new(self.content_type.clone());
        for i in index..self.len() {
            tail.push(self.keys[i].clone(), self.payload(i));
        }
        tail
    }
}

/// A run as read back from one partition of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRun {
    /// The partition it was read from.
    pub partition: u32,
    /// The offset of its first record; record `i` is at `first + i`.
    pub first: u64,
    /// The records.
    pub run: Run,
    /// Their provenance (one request's).
    pub provenance: Arc<Provenance>,
}

impl StoredRun {
    /// Records in the run.
    pub fn len(&self) -> usize {
        self.run.len()
    }

    /// Whether the run holds no record.
    pub fn is_empty(&self) -> bool {
        self.run.is_empty()
    }

    /// Where record `index` is.
    pub fn position(&self, index: usize) -> Position {
        Position { partition: self.partition, offset: self.first + index as u64 }
    }

    /// The offset after the run's last record.
    pub fn end(&self) -> u64 {
        self.first + self.len() as u64
    }

    /// Record `index` with its position and provenance, copied out (for a dead letter).
    pub fn record(&self, index: usize) -> StoredRecord {
        StoredRecord {
            position: self.position(index),
            record: self.run.record(index),
            provenance: self.provenance.clone(),
        }
    }

    /// Keeps the first `at` records and returns the rest, positioned after them.
    pub fn split_off(&mut self, at: usize) -> StoredRun {
        StoredRun {
            partition: self.partition,
            first: self.first + at as u64,
            run: self.run.split_off(at),
            provenance: self.provenance.clone(),
        }
    }

    /// Every record, copied out.
    pub fn records(&self) -> Vec<StoredRecord> {
        (0..self.len()).map(|i| self.record(i)).collect()
    }
}

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Where it is.
    pub position: Position,
    /// The appended record.
    pub record: LogRecord,
    /// Its provenance, shared by the records of one request.
    pub provenance: Arc<Provenance>,
}

/// The partition of `key` among `partitions` (FNV-1a, stable across runs and builds); records
/// without a key spread by `fallback` (a counter).
pub fn partition_for(key: Option<&str>, partitions: u32, fallback: u64) -> u32 {
    let Some(key) = key else { return (fallback % u64::from(partitions)) as u32 };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(partitions)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_split_off_keeps_its_head_and_gives_its_tail_with_keys_and_positions() {
        let mut run = Run::new("text/csv");
        for (key, payload) in [(Some("a"), "1"), (None, "22"), (Some("c"), ""), (None, "4444")] {
            run.push(key.map(str::to_string), payload.as_bytes());
        }
        let whole = run.clone();
        let provenance = Arc::new(Provenance {
            source: "s".into(),
            plugin: "p@1".into(),
            plugin_digest: String::new(),
            user: "u".into(),
            received_at_us: 0,
            request_id: "r".into(),
        });
        let mut stored = StoredRun { partition: 3, first: 100, run, provenance };
        let tail = stored.split_off(1);
        assert_eq!(stored.records().iter().map(|r| r.record.clone()).collect::<Vec<_>>(), vec![whole.record(0)]);
        assert_eq!(stored.end(), 101);
        assert_eq!(tail.first, 101);
        assert_eq!(
            tail.records().iter().map(|r| r.record.clone()).collect::<Vec<_>>(),
            (1..4).map(|i| whole.record(i)).collect::<Vec<_>>()
        );
        assert_eq!(tail.position(2), Position { partition: 3, offset: 103 });
        assert!(
            Run::from_parts(
                tail.run.content_type.clone(),
                tail.run.payloads.clone(),
                tail.run.ends.clone(),
                vec![None]
            )
            .is_err()
        );
    }
}
