//! Several records of one request in one Kafka message.
//!
//! An append groups its run's records by log partition and sends each group as one message
//! (split when it would grow past [`MAX_MESSAGE_BYTES`] or [`MAX_RECORDS`]): per-message costs
//! (headers, allocations in the client, the broker's per-message work) are paid per request, not
//! per record. The message's value is the postcard encoding of a [`Packed`] run: the content
//! type once, the keys, the payloads' end offsets and the payloads in one buffer, so that the
//! stream reads back a run it can hand to the plugin as it is. The provenance is in the
//! message's headers, once. Messages written by sluice before runs ([`CONTENT_TYPE_V1`]: one
//! entry per record) are still read.
//!
//! A record's log position packs the message offset and the record's index in the message:
//! `offset × 2^16 + index` ([`position`], [`split`]). Positions stay increasing within a
//! partition, which is all the stream core and the warehouse rely on.

use serde::{Deserialize, Serialize};
use sluice_log::{Position, Run, partition_for};

/// Bits of a position that hold the record's index within its message.
const INDEX_BITS: u32 = 16;

/// Most records in one message: indexes must fit in [`INDEX_BITS`].
pub(crate) const MAX_RECORDS: usize = 1 << INDEX_BITS;

/// A message is closed once its payloads reach this size, well below the broker's default
/// limit of 1 MiB per message (a record larger than this goes alone).
pub(crate) const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// The `content-type` header of a message holding a [`Packed`] run.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.sluice.run.v2+postcard";

/// The `content-type` header of a message written before runs: a list of [`Entry`]s.
pub(crate) const CONTENT_TYPE_V1: &str = "application/vnd.sluice.records.v1+postcard";

/// A run of records in one message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Packed<'a> {
    /// MIME type of every payload.
    pub content_type: &'a str,
    /// Partition key of each record.
    #[serde(borrow)]
    pub keys: Vec<Option<&'a str>>,
    /// Each payload's end in `payloads`.
    pub ends: Vec<u32>,
    /// The payloads, one after the other.
    #[serde(with = "serde_bytes")]
    pub payloads: &'a [u8],
}

/// One record in a message written before runs.
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

/// The value of a message holding records `indexes` of `run`.
pub(crate) fn encode(run: &Run, indexes: &[usize]) -> Vec<u8> {
    let mut payloads = Vec::with_capacity(indexes.iter().map(|&i| run.payload(i).len()).sum());
    let mut ends = Vec::with_capacity(indexes.len());
    for &index in indexes {
        payloads.extend_from_slice(run.payload(index));
        ends.push(payloads.len() as u32);
    }
    let packed = Packed {
        content_type: &run.content_type,
        keys: indexes.iter().map(|&i| run.key(i)).collect(),
        ends,
        payloads: &payloads,
    };
    postcard::to_allocvec(&packed).expect("encoding to a vector cannot fail")
}

/// The runs of a message's value (one; a message written before runs gives one per stretch of
/// records of one content type), each with the index of its first record in the message.
pub(crate) fn decode(content_type: &str, value: &[u8]) -> Result<Vec<(usize, Run)>, String> {
    let runs = match content_type {
        CONTENT_TYPE => {
            let packed: Packed<'_> = postcard::from_bytes(value).map_err(|e| format!("undecodable records: {e}"))?;
            let keys = packed.keys.iter().map(|k| k.map(str::to_string)).collect();
            let run = Run::from_parts(packed.content_type.to_string(), packed.payloads.to_vec(), packed.ends, keys)
                .map_err(|e| format!("undecodable records: {e}"))?;
            vec![(0, run)]
        }
        CONTENT_TYPE_V1 => {
            let entries: Vec<Entry<'_>> =
                postcard::from_bytes(value).map_err(|e| format!("undecodable records: {e}"))?;
            let mut runs: Vec<(usize, Run)> = Vec::new();
            for (index, entry) in entries.iter().enumerate() {
                match runs.last_mut() {
                    Some((_, run)) if run.content_type == entry.content_type => {
                        run.push(entry.key.map(str::to_string), entry.payload);
                    }
                    _ => runs
                        .push((index, Run::single(entry.key.map(str::to_string), entry.content_type, entry.payload))),
                }
            }
            runs
        }
        other => {
            return Err(format!("content type `{other}`, not `{CONTENT_TYPE}` (not written by this sluice)"));
        }
    };
    let records: usize = runs.iter().map(|(_, run)| run.len()).sum();
    if records > MAX_RECORDS {
        return Err(format!("{records} records in one message, more than {MAX_RECORDS}"));
    }
    Ok(runs)
}

/// The position of record `index` of the message at `offset` of `partition`.
pub(crate) fn position(partition: u32, offset: u64, index: usize) -> Position {
    Position { partition, offset: (offset << INDEX_BITS) | index as u64 }
}

/// A position's message offset and index within the message.
pub(crate) fn split(offset: u64) -> (u64, u64) {
    (offset >> INDEX_BITS, offset & ((1 << INDEX_BITS) - 1))
}

/// Splits records `indexes` of `run` (already of one partition) into the groups that go into
/// one message each, in order.
pub(crate) fn chunks(indexes: &[usize], run: &Run) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &record) in indexes.iter().enumerate() {
        let size = run.payload(record).len();
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

/// The messages that carry `run` over `partitions` partitions: keyed records go to their key's
/// partition, records without a key to partition `fallback` (mod `partitions`).
pub(crate) fn plan(run: &Run, partitions: u32, fallback: u64) -> Vec<Planned> {
    let mut by_partition = vec![Vec::new(); partitions as usize];
    for index in 0..run.len() {
        by_partition[partition_for(run.key(index), partitions, fallback) as usize].push(index);
    }
    let mut out = Vec::new();
    for (partition, indexes) in by_partition.into_iter().enumerate() {
        for chunk in chunks(&indexes, run) {
            out.push(Planned {
                partition: partition as u32,
                value: encode(run, &indexes[chunk.clone()]),
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

    fn run(records: &[(Option<&str>, usize)]) -> Run {
        let mut run = Run::new("application/json");
        for &(key, size) in records {
            run.push(key.map(str::to_string), &vec![b'x'; size]);
        }
        run
    }

    fn records_of(value: &[u8]) -> Run {
        let mut runs = decode(CONTENT_TYPE, value).unwrap();
        assert_eq!(runs.len(), 1);
        runs.remove(0).1
    }

    #[test]
    fn a_run_comes_back_as_it_went_in() {
        let sent = run(&[(Some("p1"), 3), (None, 0), (Some("é"), 10)]);
        let value = encode(&sent, &[0, 1, 2]);
        assert_eq!(records_of(&value), sent);
        assert_eq!(records_of(&encode(&sent, &[2])), run(&[(Some("é"), 10)]));
    }

    #[test]
    fn messages_written_before_runs_are_read_one_run_per_content_type() {
        let entries = [
            Entry { key: Some("a"), content_type: "text/csv", payload: b"1" },
            Entry { key: None, content_type: "text/csv", payload: b"22" },
            Entry { key: Some("b"), content_type: "application/json", payload: b"{}" },
        ];
        let value = postcard::to_allocvec(&entries[..]).unwrap();
        let runs = decode(CONTENT_TYPE_V1, &value).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].0, 0);
        assert_eq!(runs[0].1.record(1).payload, b"22");
        assert_eq!((runs[1].0, runs[1].1.content_type.as_str(), runs[1].1.key(0)), (2, "application/json", Some("b")));
    }

    #[test]
    fn a_value_not_written_by_sluice_is_refused() {
        let error = decode(CONTENT_TYPE, b"{\"not\": \"postcard\"}").unwrap_err();
        assert!(error.starts_with("undecodable records:"), "{error}");
        let error = decode("application/json", b"{}").unwrap_err();
        assert!(error.contains("not written by this sluice"), "{error}");
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
        let records = run(&[(None, 300 * 1024), (None, 300 * 1024), (None, 1), (None, 1)]);
        assert_eq!(chunks(&[0, 1, 2, 3], &records), vec![0..1, 1..4]);
        let big = run(&[(None, 600 * 1024)]);
        assert_eq!(chunks(&[0], &big), vec![0..1], "a record over the limit goes alone");
        let many = run(&vec![(None, 0); MAX_RECORDS + 5]);
        let indexes: Vec<usize> = (0..many.len()).collect();
        assert_eq!(chunks(&indexes, &many), vec![0..MAX_RECORDS, MAX_RECORDS..MAX_RECORDS + 5]);
        assert!(chunks(&[], &many).is_empty());
    }

    #[test]
    fn a_plan_keeps_keys_together_and_keyless_records_in_one_message() {
        let records = run(&[(Some("a"), 1), (None, 2), (Some("b"), 3), (Some("a"), 4), (None, 5)]);
        let planned = plan(&records, 4, 7);
        let mut seen: Vec<usize> = planned.iter().flat_map(|m| m.indexes.clone()).collect();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4], "every record in exactly one message");
        let holding = |i: usize| planned.iter().find(|m| m.indexes.contains(&i)).unwrap();
        assert_eq!(holding(0).indexes, holding(3).indexes, "one key, one message, in order");
        assert_eq!(holding(1).partition, 7 % 4);
        assert!(holding(1).indexes.contains(&4));
        for message in &planned {
            let back = records_of(&message.value);
            let sent: Vec<_> = message.indexes.iter().map(|&i| records.record(i)).collect();
            assert_eq!((0..back.len()).map(|i| back.record(i)).collect::<Vec<_>>(), sent);
        }
        let mut positions = vec![Position { partition: 0, offset: 0 }; records.len()];
        for message in &planned {
            place(message, 10, &mut positions);
        }
        assert_eq!(positions[3], position(holding(3).partition, 10, 1));
    }
}
