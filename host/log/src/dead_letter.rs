//! Dead letters: records the stream core could not write, with why.

use serde::{Deserialize, Serialize};

use crate::record::{Position, StoredRecord};

/// A record that the stream core sent to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record as the log held it (position, payload, provenance).
    pub record: StoredRecord,
    /// Why it was not written.
    pub reason: String,
    /// The field at fault, when the plugin named one.
    pub field: Option<String>,
    /// `name@version` of the plugin that refused it.
    pub plugin: String,
    /// When it was dead-lettered: microseconds since 1970-01-01 UTC.
    pub failed_at_us: i64,
}

impl DeadLetter {
    /// `record`, refused now by `plugin` (`name@version`) for `reason`.
    pub fn now(record: StoredRecord, reason: String, field: Option<String>, plugin: String) -> Self {
        Self { record, reason, field, plugin, failed_at_us: crate::now_us() }
    }
}

/// A dead letter as read back, with its sequence number in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeadLetter {
    /// Sequence number in the source's dead-letter queue.
    pub sequence: u64,
    /// The entry.
    pub entry: DeadLetter,
}

/// The metadata of a dead letter, as stored next to its payload (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeadLetterMeta {
    pub position: Position,
    pub reason: String,
    pub field: Option<String>,
    pub plugin: String,
    pub failed_at_us: i64,
}

impl DeadLetterMeta {
    pub(crate) fn of(entry: &DeadLetter) -> Self {
        Self {
            position: entry.record.position,
            reason: entry.reason.clone(),
            field: entry.field.clone(),
            plugin: entry.plugin.clone(),
            failed_at_us: entry.failed_at_us,
        }
    }
}
