//! Records that carry their sender's own id (HL7 v2: MSH-3, MSH-4 and MSH-10; `origin.id` in
//! the plugin contract) are stored once per source: a record whose id the source already
//! stored with the same content, within the log's idempotency window, is acknowledged again
//! and not appended; one whose id was stored with other content is rejected, never dropped.
//!
//! The ids of a request's new records are remembered in the log in the same atomic write as the
//! records (`sluice_log::Remembered`, under the reserved user [`RECORD_IDS`]), so the memory
//! holds across restarts and crashes, with the spool as with Kafka. Two requests holding the same
//! id at once: the second gets a 409 until the first is answered.

use sluice_log::{RecordLog, Remembered};
use sluice_runtime::{Batch, BatchBuilder, Origin};

use crate::error::ApiError;
use crate::idempotency::{Claim, InFlight, fingerprint, same_content};

/// The user under which record ids are remembered: empty, which no account can be named, so
/// ids never meet a sender's Idempotency-Keys, and one id counts for the whole source whoever
/// sends it.
pub const RECORD_IDS: &str = "";

/// The reason a record is rejected whose id was stored before with other content.
pub(crate) const ID_REUSED: &str = "a record with the same id (HL7 v2: the same MSH-3, MSH-4 and MSH-10) was stored \
     before with other content; this one was not stored: give each new message its own id";

/// A request's accepted records once those stored before are taken out.
pub(crate) struct NewRecords {
    /// The records to append.
    pub records: Batch,
    /// Their origins.
    pub origins: Vec<Origin>,
    /// How many accepted records were stored before (or twice in this request), the same
    /// content under the same id, and are not appended again.
    pub duplicates: usize,
    /// Records whose id was stored before (or earlier in this request) with other content:
    /// not appended, rejected with [`ID_REUSED`].
    pub reused: Vec<Origin>,
    /// The ids to remember with the append.
    pub answers: Vec<Remembered>,
    /// Held until the append is answered.
    pub claims: Vec<Claim>,
}

/// What becomes of one record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Appended.
    New,
    /// Stored before with the same content: acknowledged, not appended.
    Duplicate,
    /// Its id stored before with other content: rejected.
    Reused,
}

/// Takes out of `records` those whose id `source` already stored, or that repeat an id of an
/// earlier record of the same request: the same content is a duplicate, other content under
/// the same id is rejected (a sender reusing a control id must not lose its message silently).
pub(crate) async fn take_out_stored(
    log: &dyn RecordLog,
    in_flight: &InFlight,
    source: &str,
    records: Batch,
    origins: Vec<Origin>,
    at_us: i64,
) -> Result<NewRecords, ApiError> {
    if origins.iter().all(|o| o.id.is_none()) {
        return Ok(NewRecords {
            records,
            origins,
            duplicates: 0,
            reused: Vec::new(),
            answers: Vec::new(),
            claims: Vec::new(),
        });
    }
    let mut fates = Vec::with_capacity(origins.len());
    let mut claims = Vec::new();
    let mut answers = Vec::new();
    // Each id of this request, with the fingerprint of its first record.
    let mut seen = std::collections::HashMap::new();
    for (index, origin) in origins.iter().enumerate() {
        let Some(id) = &origin.id else {
            fates.push(Fate::New);
            continue;
        };
        let record = records.get(index).unwrap_or_default();
        let print = fingerprint(records.content_type(), record);
        if let Some(first) = seen.get(id.as_str()) {
            fates.push(if *first == print { Fate::Duplicate } else { Fate::Reused });
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
        fates.push(match &stored {
            None => {
                answers.push(Remembered {
                    source: source.to_string(),
                    user: RECORD_IDS.to_string(),
                    key: id.clone(),
                    fingerprint: print.clone(),
                    status: 202,
                    response: String::new(),
                    at_us,
                });
                Fate::New
            }
            Some(answer) if same_content(&answer.fingerprint, &print, records.content_type(), record) => {
                Fate::Duplicate
            }
            Some(_) => Fate::Reused,
        });
        seen.insert(id.as_str(), print);
    }
    let duplicates = fates.iter().filter(|&&f| f == Fate::Duplicate).count();
    if fates.iter().all(|&f| f == Fate::New) {
        return Ok(NewRecords { records, origins, duplicates, reused: Vec::new(), answers, claims });
    }
    let mut builder = BatchBuilder::new(records.content_type());
    let mut kept = Vec::with_capacity(origins.len());
    let mut reused = Vec::new();
    for ((record, origin), fate) in records.iter().zip(origins).zip(fates) {
        match fate {
            Fate::New => {
                builder.push(record);
                kept.push(origin);
            }
            Fate::Duplicate => {}
            Fate::Reused => reused.push(origin),
        }
    }
    Ok(NewRecords { records: builder.finish(), origins: kept, duplicates, reused, answers, claims })
}
