//! Several records of one request in one Kafka message.
//!
//! An append groups its records by log partition and sends each group as one message (split
//! when it would grow past [`MAX_MESSAGE_BYTES`] or [`MAX_RECORDS`]): per-message costs (headers,
//! allocations in the client, the broker's per-message work) are paid per request, not per
//! record. The message's value is the postcard encoding of its [`Entry`]s; the provenance is in
//! its headers, once.
//!
//! A record's log position packs the message offset and the record's index in the message:
//! `offset × 2^16 + index` ([`position`], [`split`]). Positions stay increasing within a
//! partition, which is all the stream core and the warehouse rely on.

use serde::{Deserialize, Serialize};
use sluice_log::{LogRecord, Position, partition_for};

/// Bits of a position that hold the record's index within its message.
const INDEX_BITS: u32 = 16;

/// Most records in one message: indexes must fit in [`INDEX_BITS`].
pub(crate) const MAX_RECORDS: usize = 1 << INDEX_BITS;

/// A message is closed once its payloads reach this size, well below the broker's default
/// limit of 1 MiB per message (a record larger than this goes alone).
pub(crate) const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// The `content-type` header of a message holding [`Entry`]s.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.sluice.records.v1+postcard";

/// One record in a message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Entry<'a> {
    /// Partition key.
    #[serde(borrow)]
    pub key: Option<&'a str>,
    /// MIME type of the payload.
    pub content_type: &'a str,
    /// The canonical record.
    #[serde(with = "serde_bytes")]
    pub payload: &'a [u8],
}

impl<'a> From<&'a LogRecord> for Entry<'a> {
    fn from(record: &'a LogRecord) -> Self {
        Self { key: record.key.as_deref(), content_type: &record.content_type, payload: &record.payload }
    }
}

impl Entry<'_> {
    /// The record, owned.
    pub fn to_record(&self) -> LogRecord {
        LogRecord {
            key: self.key.map(str::to_string),
            content_type: self.content_type.to_string(),
            payload: self.payload.to_vec(),
        }
    }
}

/// The value of a message holding `entries`.
pub(crate) fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
    postcard::to_allocvec(entries).expect("encoding to a vector cannot fail")
}

/// The entries of a message's value.
pub(crate) fn decode(value: &[u8]) -> Result<Vec<Entry<'_>>, String> {
    let entries: Vec<Entry<'_>> = postcard::from_bytes(value).map_err(|e| format!("undecodable records: {e}"))?;
    if entries.len() > MAX_RECORDS {
        return Err(format!("{} records in one message, more than {MAX_RECORDS}", entries.len()));
    }
    Ok(entries)
}

/// The position of record `index` of the message at `offset` of `partition`.
pub(crate) fn position(partition: u32, offset: u64, index: usize) -> Position {
    Position { partition, offset: (offset << INDEX_BITS) | index as u64 }
}

/// A position's message offset and index within the message.
pub(crate) fn split(offset: u64) -> (u64, u64) {
    (offset >> INDEX_BITS, offset & ((1 << INDEX_BITS) - 1))
}

/// Splits `records` (already of one partition, as indexes into the append) into the groups
/// that go into one message each, in order.
pub(crate) fn chunks(indexes: &[usize], records: &[LogRecord]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &record) in indexes.iter().enumerate() {
        let size = records[record].payload.len();
        if i > start && (bytes + size > MAX_MESSAGE_BYTES || i - start == MAX_RECORDS) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < indexes.len() {
        out.push(start..indexes.len());
    }
    out
}

/// One message of an append: its partition, the indexes of the append's records it holds (in
/// order) and its encoded value.
#[derive(Debug)]
pub(crate) struct Planned {
    pub partition: u32,
    pub indexes: Vec<usize>,
    pub value: Vec<u8>,
}

/// The messages that carry `records` over `partitions` partitions: keyed records go to their
/// key's partition, records without a key to partition `fallback` (mod `partitions`).
pub(crate) fn plan(records: &[LogRecord], partitions: u32, fallback: u64) -> Vec<Planned> {
    let mut by_partition = vec![Vec::new(); partitions as usize];
    for (index, record) in records.iter().enumerate() {
        by_partition[partition_for(record.key.as_deref(), partitions, fallback) as usize].push(index);
    }
    let mut out = Vec::new();
    for (partition, indexes) in by_partition.into_iter().enumerate() {
        for chunk in chunks(&indexes, records) {
            let entries: Vec<Entry<'_>> = indexes[chunk.clone()].iter().map(|&i| (&records[i]).into()).collect();
            out.push(Planned {
                partition: partition as u32,
                value: encode(&entries),
                indexes: indexes[chunk].to_vec(),
            });
        }
    }
    out
}

/// Fills in the positions of `message`'s records, now that it landed at `offset`.
pub(crate) fn place(message: &Planned, offset: u64, positions: &mut [Position]) {
    for (within, &record) in message.indexes.iter().enumerate() {
        positions[record] = position(message.partition, offset, within);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&str>, payload: usize) -> LogRecord {
        LogRecord {
            key: key.map(str::to_string),
            content_type: "application/json".into(),
            payload: vec![b'x'; payload],
        }
    }

    #[test]
    fn entries_come_back_as_they_went_in() {
        let records = vec![record(Some("p1"), 3), record(None, 0), record(Some("é"), 10)];
        let entries: Vec<Entry<'_>> = records.iter().map(Entry::from).collect();
        let value = encode(&entries);
        let back: Vec<LogRecord> = decode(&value).unwrap().iter().map(Entry::to_record).collect();
        assert_eq!(back, records);
    }

    #[test]
    fn a_value_not_written_by_sluice_is_refused() {
        let error = decode(b"{\"not\": \"postcard\"}").unwrap_err();
        assert!(error.starts_with("undecodable records:"), "{error}");
    }

    #[test]
    fn positions_keep_message_order_then_index_order() {
        let a = position(2, 7, 65_535);
        let b = position(2, 8, 0);
        assert!(a < b);
        assert_eq!(split(a.offset), (7, 65_535));
        assert_eq!(split(b.offset), (8, 0));
        assert_eq!(a.partition, 2);
    }

    #[test]
    fn messages_close_at_the_size_or_count_limit() {
        let records = vec![record(None, 300 * 1024), record(None, 300 * 1024), record(None, 1), record(None, 1)];
        assert_eq!(chunks(&[0, 1, 2, 3], &records), vec![0..1, 1..4]);
        let big = vec![record(None, 600 * 1024)];
        assert_eq!(chunks(&[0], &big), vec![0..1], "a record over the limit goes alone");
        let many: Vec<LogRecord> = (0..MAX_RECORDS + 5).map(|_| record(None, 0)).collect();
        let indexes: Vec<usize> = (0..many.len()).collect();
        assert_eq!(chunks(&indexes, &many), vec![0..MAX_RECORDS, MAX_RECORDS..MAX_RECORDS + 5]);
        assert!(chunks(&[], &many).is_empty());
    }

    #[test]
    fn a_plan_keeps_keys_together_and_keyless_records_in_one_message() {
        let records =
            vec![record(Some("a"), 1), record(None, 2), record(Some("b"), 3), record(Some("a"), 4), record(None, 5)];
        let planned = plan(&records, 4, 7);
        let mut seen: Vec<usize> = planned.iter().flat_map(|m| m.indexes.clone()).collect();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4], "every record in exactly one message");
        let holding = |i: usize| planned.iter().find(|m| m.indexes.contains(&i)).unwrap();
        assert_eq!(holding(0).indexes, holding(3).indexes, "one key, one message, in order");
        assert_eq!(holding(1).partition, 7 % 4);
        assert!(holding(1).indexes.contains(&4));
        for message in &planned {
            let back: Vec<LogRecord> = decode(&message.value).unwrap().iter().map(Entry::to_record).collect();
            let sent: Vec<LogRecord> = message.indexes.iter().map(|&i| records[i].clone()).collect();
            assert_eq!(back, sent);
        }
        let mut positions = vec![Position { partition: 0, offset: 0 }; records.len()];
        for message in &planned {
            place(message, 10, &mut positions);
        }
        assert_eq!(positions[3], position(holding(3).partition, 10, 1));
    }
}
