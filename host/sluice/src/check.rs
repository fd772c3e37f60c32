//! `sluice plugin check --input`: a body through the plugin exactly as the host takes it — the
//! API's checks of the body, its `split` (with the API's accounting of records the plugin said
//! nothing about), then the stream's `transform` of the canonical records `split` accepted.

use anyhow::Context;
use sluice_api::ApiLimits;
use sluice_runtime::{Batch, Rejection, Source, Transformed};

/// What the host would make of one body.
#[derive(Debug)]
pub struct CheckRun {
    /// Records `split` accepted: the API would answer 202 for them.
    pub accepted: usize,
    /// The rows `transform` made of the accepted records (row inputs index the accepted
    /// records), with `rejected` emptied: its rejections are in `refused`.
    pub rows: Transformed,
    /// Records the API would reject in its answer (by `split`, or because the plugin gave no
    /// outcome for them); `record` is the record's index in the body.
    pub rejected: Vec<Rejection>,
    /// Records `split` accepted and `transform` refused: the API would answer 202 and the stream
    /// would then dead-letter them, a defect of the plugin; `record` is the index in the body.
    pub refused: Vec<Rejection>,
}

/// Runs `body` (of MIME essence `essence`) through `source` as the API and the stream would.
pub fn run(source: &Source, essence: &str, body: &[u8]) -> anyhow::Result<CheckRun> {
    let sent = sluice_api::check_body(body, essence, ApiLimits::default().max_json_depth)
        .context("the API would refuse this body with 400")?;
    let split = source.split(&Batch::single(essence, body))?.output;
    let accepted_indices: Vec<u32> = split.origins.iter().map(|origin| origin.record).collect();
    let rejected_indices: Vec<u32> = split.rejected.iter().map(|r| r.record).collect();
    let mut rejected = split.rejected;
    for record in sluice_api::unaccounted(sent, &accepted_indices, &rejected_indices) {
        rejected.push(Rejection {
            input: 0,
            record,
            reason: "the plugin's split gave no outcome for this record, so the API would not store it".into(),
            field: None,
        });
    }
    rejected.sort_by_key(|r| r.record);

    let mut rows = source.transform(&split.records)?.output;
    let silent = rows.unanswered(split.records.len()).into_iter().map(|input| Rejection {
        input,
        record: 0,
        reason: sluice_stream::NO_OUTCOME.into(),
        field: None,
    });
    let mut refused: Vec<Rejection> = std::mem::take(&mut rows.rejected)
        .into_iter()
        .chain(silent)
        .map(|r| Rejection { input: 0, record: accepted_indices[r.input as usize], ..r })
        .collect();
    refused.sort_by_key(|r| r.record);
    Ok(CheckRun { accepted: split.records.len(), rows, rejected, refused })
}
