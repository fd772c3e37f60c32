//! How the spool stores records: one row per run, the records one request appended to one
//! partition with one content type, side by side. The provenance and the content type are
//! stored once per run; the payloads are packed into one blob with their end offsets beside
//! them, and the keys into another. A record's offset is the run's first offset plus its index.

use std::sync::Arc;

use crate::record::{LogRecord, Position, Provenance, StoredRecord};

/// A run's records, packed for one row.
#[derive(Debug, Default)]
pub(crate) struct PackedRun {
    /// Records in the run.
    pub count: usize,
    /// Every payload, one after the other.
    pub payloads: Vec<u8>,
    /// Each payload's end in `payloads`, as little-endian `u32`s.
    pub ends: Vec<u8>,
    /// Each key as a little-endian `u32` length plus one (zero: no key) and its bytes; `None`
    /// when no record of the run has a key.
    pub keys: Option<Vec<u8>>,
}

/// Largest packed payloads of one run: its ends must fit in a `u32`.
const MAX_RUN_BYTES: usize = u32::MAX as usize;

impl PackedRun {
    /// Whether `record` can join the run without overflowing its end offsets.
    pub fn has_room_for(&self, record: &LogRecord) -> bool {
        self.payloads.len() + record.payload.len() <= MAX_RUN_BYTES
    }

    /// Adds `record` at the end of the run.
    pub fn push(&mut self, record: &LogRecord) {
        if record.key.is_some() && self.keys.is_none() {
            // Earlier records of the run had no key.
            self.keys = Some(vec![0; 4 * self.count]);
        }
        if let Some(keys) = &mut self.keys {
            match &record.key {
                Some(key) => {
                    keys.extend_from_slice(&(key.len() as u32 + 1).to_le_bytes());
                    keys.extend_from_slice(key.as_bytes());
                }
                None => keys.extend_from_slice(&0u32.to_le_bytes()),
            }
        }
        self.payloads.extend_from_slice(&record.payload);
        self.ends.extend_from_slice(&(self.payloads.len() as u32).to_le_bytes());
        self.count += 1;
    }
}

/// Why a stored run could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadRun {
    /// The end offsets do not describe the payload blob.
    #[error("payload ends do not match the payloads")]
    Ends,
    /// The keys blob does not hold one key per record.
    #[error("keys do not match the records")]
    Keys,
}

/// A stored run as read from its row.
pub(crate) struct StoredRun {
    pub partition: u32,
    pub first: u64,
    pub count: u64,
    pub content_type: String,
    pub keys: Option<Vec<u8>>,
    pub payloads: Vec<u8>,
    pub ends: Vec<u8>,
    pub provenance: Arc<Provenance>,
}

impl StoredRun {
    /// The run's records from offset `from` on, at most `max`, appended to `out`.
    pub fn unpack_into(&self, from: u64, max: usize, out: &mut Vec<StoredRecord>) -> Result<(), BadRun> {
        let count = usize::try_from(self.count).map_err(|_| BadRun::Ends)?;
        if self.ends.len() != 4 * count {
            return Err(BadRun::Ends);
        }
        let ends: Vec<usize> =
            self.ends.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize).collect();
        let keys = match &self.keys {
            Some(blob) => Some(split_keys(blob, count)?),
            None => None,
        };
        let skip = usize::try_from(from.saturating_sub(self.first)).unwrap_or(usize::MAX);
        let mut start = if skip == 0 { 0 } else { ends.get(skip - 1).copied().unwrap_or(0) };
        for index in skip..count {
            if max == 0 || out.len() >= max {
                break;
            }
            let end = ends[index];
            let payload = self.payloads.get(start..end).ok_or(BadRun::Ends)?.to_vec();
            start = end;
            out.push(StoredRecord {
                position: Position { partition: self.partition, offset: self.first + index as u64 },
                record: LogRecord {
                    key: keys.as_ref().and_then(|keys| keys[index].clone()),
                    content_type: self.content_type.clone(),
                    payload,
                },
                provenance: self.provenance.clone(),
            });
        }
        Ok(())
    }
}

/// The `count` keys packed by [`PackedRun::push`].
fn split_keys(mut blob: &[u8], count: usize) -> Result<Vec<Option<String>>, BadRun> {
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        let (length, rest) = blob.split_first_chunk::<4>().ok_or(BadRun::Keys)?;
        let length = u32::from_le_bytes(*length) as usize;
        if length == 0 {
            keys.push(None);
            blob = rest;
            continue;
        }
        let (key, rest) = rest.split_at_checked(length - 1).ok_or(BadRun::Keys)?;
        keys.push(Some(String::from_utf8(key.to_vec()).map_err(|_| BadRun::Keys)?));
        blob = rest;
    }
    if blob.is_empty() { Ok(keys) } else { Err(BadRun::Keys) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Arc<Provenance> {
        Arc::new(Provenance {
            source: "labs".into(),
            plugin: "labs@0.1.0".into(),
            plugin_digest: "ab".repeat(32),
            user: "u".into(),
            received_at_us: 1,
            request_id: "r".into(),
        })
    }

    fn stored(packed: PackedRun, first: u64) -> StoredRun {
        StoredRun {
            partition: 2,
            first,
            count: packed.count as u64,
            content_type: "text/csv".into(),
            keys: packed.keys,
            payloads: packed.payloads,
            ends: packed.ends,
            provenance: provenance(),
        }
    }

    fn record(key: Option<&str>, payload: &str) -> LogRecord {
        LogRecord { key: key.map(str::to_string), content_type: "text/csv".into(), payload: payload.into() }
    }

    #[test]
    fn records_come_back_with_their_keys_payloads_and_positions_from_any_offset() {
        let records = [record(None, "a"), record(Some("k1"), ""), record(Some(""), "ccc"), record(None, "dd")];
        let mut packed = PackedRun::default();
        for r in &records {
            packed.push(r);
        }
        let run = stored(packed, 10);
        let mut all = Vec::new();
        run.unpack_into(0, 100, &mut all).unwrap();
        assert_eq!(all.iter().map(|s| s.record.clone()).collect::<Vec<_>>(), records);
        assert_eq!(all.iter().map(|s| s.position.offset).collect::<Vec<_>>(), [10, 11, 12, 13]);
        assert!(all.iter().all(|s| s.position.partition == 2));

        let mut tail = Vec::new();
        run.unpack_into(12, 1, &mut tail).unwrap();
        assert_eq!(tail.len(), 1);
        assert_eq!((tail[0].position.offset, &tail[0].record), (12, &records[2]));
    }

    #[test]
    fn runs_without_keys_store_none_and_damaged_rows_are_reported() {
        let mut packed = PackedRun::default();
        packed.push(&record(None, "x"));
        assert!(packed.keys.is_none());
        let mut run = stored(packed, 0);
        run.ends.pop();
        assert!(matches!(run.unpack_into(0, 10, &mut Vec::new()), Err(BadRun::Ends)));
        run.ends = 9u32.to_le_bytes().to_vec();
        assert!(matches!(run.unpack_into(0, 10, &mut Vec::new()), Err(BadRun::Ends)));
        run.ends = 1u32.to_le_bytes().to_vec();
        run.keys = Some(vec![5, 0, 0, 0, b'a']);
        assert!(matches!(run.unpack_into(0, 10, &mut Vec::new()), Err(BadRun::Keys)));
    }
}
