//! Provenance and dead-letter details in Kafka headers.

use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use sluice_log::{LogError, LogRecord, Position, Provenance, StoredRecord, StoredRun};

use crate::envelope;

pub(crate) const CONTENT_TYPE: &str = "content-type";
const SOURCE: &str = "sluice-source";
const PLUGIN: &str = "sluice-plugin";
const PLUGIN_DIGEST: &str = "sluice-plugin-digest";
const USER: &str = "sluice-user";
const RECEIVED_AT: &str = "sluice-received-at-us";
const REQUEST_ID: &str = "sluice-request-id";

/// Headers of a message: its content type and provenance.
pub(crate) fn record_headers(content_type: &str, provenance: &Provenance) -> OwnedHeaders {
    let received = provenance.received_at_us.to_string();
    OwnedHeaders::new_with_capacity(7)
        .insert(Header { key: CONTENT_TYPE, value: Some(content_type) })
        .insert(Header { key: SOURCE, value: Some(provenance.source.as_str()) })
        .insert(Header { key: PLUGIN, value: Some(provenance.plugin.as_str()) })
        .insert(Header { key: PLUGIN_DIGEST, value: Some(provenance.plugin_digest.as_str()) })
        .insert(Header { key: USER, value: Some(provenance.user.as_str()) })
        .insert(Header { key: RECEIVED_AT, value: Some(received.as_str()) })
        .insert(Header { key: REQUEST_ID, value: Some(provenance.request_id.as_str()) })
}

/// The values of headers `keys`, as UTF-8, read in one pass over the message's headers.
pub(crate) fn headers<'a, const N: usize>(message: &'a BorrowedMessage<'_>, keys: [&str; N]) -> [Option<&'a str>; N] {
    let mut values = [None; N];
    for header in message.headers().into_iter().flat_map(|h| h.iter()) {
        if let Some(slot) = keys.iter().position(|k| *k == header.key) {
            values[slot] = header.value.and_then(|v| std::str::from_utf8(v).ok());
        }
    }
    values
}

/// The value of header `key`, as UTF-8.
pub(crate) fn header<'a>(message: &'a BorrowedMessage<'_>, key: &str) -> Option<&'a str> {
    let [value] = headers(message, [key]);
    value
}

fn at(message: &BorrowedMessage<'_>) -> String {
    format!("{}/{}/{}", message.topic(), message.partition(), message.offset())
}

/// A message's content type and provenance, from its headers.
fn content_type_and_provenance<'m>(message: &'m BorrowedMessage<'_>) -> Result<(&'m str, Provenance), LogError> {
    let [content_type, source, plugin, plugin_digest, user, received_at, request_id] =
        headers(message, [CONTENT_TYPE, SOURCE, PLUGIN, PLUGIN_DIGEST, USER, RECEIVED_AT, REQUEST_ID]);
    let need = |value: Option<&'m str>, key: &str| -> Result<&'m str, LogError> {
        value.ok_or_else(|| LogError::Corrupt(at(message), format!("no `{key}` header")))
    };
    let received_at_us = need(received_at, RECEIVED_AT)?
        .parse()
        .map_err(|_| LogError::Corrupt(at(message), format!("bad `{RECEIVED_AT}` header")))?;
    let provenance = Provenance {
        source: need(source, SOURCE)?.to_string(),
        plugin: need(plugin, PLUGIN)?.to_string(),
        plugin_digest: need(plugin_digest, PLUGIN_DIGEST)?.to_string(),
        user: need(user, USER)?.to_string(),
        received_at_us,
        request_id: need(request_id, REQUEST_ID)?.to_string(),
    };
    Ok((need(content_type, CONTENT_TYPE)?, provenance))
}

/// A message holding one record (a dead letter), with its provenance from the headers.
pub(crate) fn stored_record(message: &BorrowedMessage<'_>) -> Result<StoredRecord, LogError> {
    let (content_type, provenance) = content_type_and_provenance(message)?;
    let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned());
    Ok(StoredRecord {
        position: Position { partition: message.partition() as u32, offset: message.offset() as u64 },
        record: LogRecord {
            key,
            content_type: content_type.to_string(),
            payload: message.payload().unwrap_or_default().to_vec(),
        },
        provenance: Arc::new(provenance),
    })
}

/// The runs of a message of a raw topic (see [`envelope`]), from position `from` on (a run
/// holding `from` is cut to start there), appended to `out`. They share the message's
/// provenance.
pub(crate) fn stored_runs(message: &BorrowedMessage<'_>, from: u64, out: &mut Vec<StoredRun>) -> Result<(), LogError> {
    let (content_type, provenance) = content_type_and_provenance(message)?;
    let runs = envelope::decode(content_type, message.payload().unwrap_or_default())
        .map_err(|e| LogError::Corrupt(at(message), e))?;
    let provenance = Arc::new(provenance);
    let (partition, offset) = (message.partition() as u32, message.offset() as u64);
    for (index, run) in runs {
        let first = envelope::position(partition, offset, index).offset;
        let end = first + run.len() as u64;
        if end <= from {
            continue;
        }
        let run = if from > first { run.tail((from - first) as usize) } else { run };
        out.push(StoredRun { partition, first: first.max(from), run, provenance: provenance.clone() });
    }
    Ok(())
}
