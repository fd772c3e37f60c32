//! Provenance and dead-letter details in Kafka headers.

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use sluice_log::{LogError, LogRecord, Position, Provenance, StoredRecord};

pub(crate) const CONTENT_TYPE: &str = "content-type";
const SOURCE: &str = "sluice-source";
const PLUGIN: &str = "sluice-plugin";
const PLUGIN_DIGEST: &str = "sluice-plugin-digest";
const USER: &str = "sluice-user";
const RECEIVED_AT: &str = "sluice-received-at-us";
const REQUEST_ID: &str = "sluice-request-id";

/// Headers of a record: its content type and provenance.
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

/// The value of header `key`, as UTF-8.
pub(crate) fn header<'a>(message: &'a BorrowedMessage<'_>, key: &str) -> Option<&'a str> {
    let headers = message.headers()?;
    headers.iter().find(|h| h.key == key).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
}

/// A record as the log holds it, with its provenance from the headers (read in one pass).
pub(crate) fn stored_record(message: &BorrowedMessage<'_>) -> Result<StoredRecord, LogError> {
    let at = || format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
    const KEYS: [&str; 7] = [CONTENT_TYPE, SOURCE, PLUGIN, PLUGIN_DIGEST, USER, RECEIVED_AT, REQUEST_ID];
    let mut values: [Option<&str>; 7] = [None; 7];
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            if let Some(slot) = KEYS.iter().position(|k| *k == header.key) {
                values[slot] = header.value.and_then(|v| std::str::from_utf8(v).ok());
            }
        }
    }
    let get = |slot: usize| values[slot].ok_or_else(|| LogError::Corrupt(at(), format!("no `{}` header", KEYS[slot])));
    let received_at_us = get(5)?.parse().map_err(|_| LogError::Corrupt(at(), format!("bad `{RECEIVED_AT}` header")))?;
    let provenance = Provenance {
        source: get(1)?.to_string(),
        plugin: get(2)?.to_string(),
        plugin_digest: get(3)?.to_string(),
        user: get(4)?.to_string(),
        received_at_us,
        request_id: get(6)?.to_string(),
    };
    let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned());
    Ok(StoredRecord {
        position: Position { partition: message.partition() as u32, offset: message.offset() as u64 },
        record: LogRecord {
            key,
            content_type: get(0)?.to_string(),
            payload: message.payload().unwrap_or_default().to_vec(),
        },
        provenance,
    })
}
