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
