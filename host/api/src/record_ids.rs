//! Records that carry their sender's own id (HL7 v2 MSH-10, `origin.id` in the plugin contract)
//! are stored once per source: a record whose id the source already stored, within the log's
//! idempotency window, is acknowledged again and not appended.
//!
//! The ids of a request's new records are remembered in the log in the same atomic write as the
//! records (`sluice_log::Remembered`, under the reserved user [`RECORD_IDS`]), so the memory
//! holds across restarts and crashes, with the spool as with Kafka. Two requests holding the same
//! id at once: the second gets a 409 until the first is answered.

use sluice_log::{RecordLog, Remembered};
use sluice_runtime::{Batch, BatchBuilder, Origin};

use crate::error::ApiError;
use crate::idempotency::{Claim, InFlight, fingerprint};

/// The user under which record ids are remembered: empty, which no account can be named, so
/// ids never meet a sender's Idempotency-Keys, and one id counts for the whole source whoever
/// sends it.
pub const RECORD_IDS: &str = "";

/// A request's accepted records once those stored before are taken out.
pub(crate) struct NewRecords {
    /// The records to append.
    pub records: Batch,
    /// Their origins.
    pub origins: Vec<Origin>,
    /// How many accepted records were stored before (or twice in this request) and are not
    /// appended again.
    pub duplicates: usize,
    /// The ids to remember with the append.
    pub answers: Vec<Remembered>,
    /// Held until the append is answered.
    pub claims: Vec<Claim>,
}

/// Takes out of `records` those whose id `source` already stored, or that repeat an id of an
/// earlier record of the same request.
pub(crate) async fn take_out_stored(
    log: &dyn RecordLog,
    in_flight: &InFlight,
    source: &str,
    records: Batch,
    origins: Vec<Origin>,
    at_us: i64,
) -> Result<NewRecords, ApiError> {
    if origins.iter().all(|o| o.id.is_none()) {
        return Ok(NewRecords { records, origins, duplicates: 0, answers: Vec::new(), claims: Vec::new() });
    }
    let mut keep = Vec::with_capacity(origins.len());
    let mut claims = Vec::new();
    let mut answers = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, origin) in origins.iter().enumerate() {
        let Some(id) = &origin.id else {
            keep.push(true);
            continue;
        };
        if !seen.insert(id.as_str()) {
            keep.push(false);
            continue;
        }
        claims.push(in_flight.claim(source, RECORD_IDS, id).await.map_err(|error| match error {
            ApiError::IdempotencyKeyInUse => ApiError::RecordInFlight,
            other => other,
        })?);
        let stored = log.remembered(source, RECORD_IDS, id).await.map_err(|error| {
            tracing::warn!(%error, source, "cannot look up record ids");
            ApiError::Unavailable
        })?;
        keep.push(stored.is_none());
        if stored.is_none() {
            let record = records.get(index).unwrap_or_default();
            answers.push(Remembered {
                source: source.to_string(),
                user: RECORD_IDS.to_string(),
                key: id.clone(),
                fingerprint: fingerprint(records.content_type(), record),
                status: 202,
                response: String::new(),
                at_us,
            });
        }
    }
    let duplicates = keep.iter().filter(|&&k| !k).count();
    if duplicates == 0 {
        return Ok(NewRecords { records, origins, duplicates, answers, claims });
    }
    let mut builder = BatchBuilder::new(records.content_type());
    let mut kept = Vec::with_capacity(origins.len() - duplicates);
    for ((record, origin), keep) in records.iter().zip(origins).zip(keep) {
        if keep {
            builder.push(record);
            kept.push(origin);
        }
    }
    Ok(NewRecords { records: builder.finish(), origins: kept, duplicates, answers, claims })
}
