//! The dead-letter topic of a source: one partition; a dead letter's sequence number is its
//! offset. The replay cursor is the committed offset of the source's replay group.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Message};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use sluice_log::{DeadLetter, LogError, Position, StoredDeadLetter};

use crate::consumer::blocking;
use crate::headers::{header, record_headers, stored_record};
use crate::producer::KafkaLog;

const REASON: &str = "sluice-dlq-reason";
const FIELD: &str = "sluice-dlq-field";
const PLUGIN: &str = "sluice-dlq-plugin";
const PARTITION: &str = "sluice-dlq-partition";
const OFFSET: &str = "sluice-dlq-offset";
const FAILED_AT: &str = "sluice-dlq-failed-at-us";

async fn ensure(log: &KafkaLog, source: &str) -> Result<String, LogError> {
    let topic = log.config().dead_letter_topic(source);
    log.topics.ensure(&topic, 1, log.config().replication).await?;
    Ok(topic)
}

pub(crate) async fn append(log: &KafkaLog, source: &str, entries: Vec<DeadLetter>) -> Result<(), LogError> {
    let topic = ensure(log, source).await?;
    let mut deliveries = Vec::with_capacity(entries.len());
    for entry in &entries {
        let (partition, offset, failed_at) = (
            entry.record.position.partition.to_string(),
            entry.record.position.offset.to_string(),
            entry.failed_at_us.to_string(),
        );
        let mut headers = record_headers(&entry.record.record.content_type, &entry.record.provenance)
            .insert(Header { key: REASON, value: Some(entry.reason.as_str()) })
            .insert(Header { key: PLUGIN, value: Some(entry.plugin.as_str()) })
            .insert(Header { key: PARTITION, value: Some(partition.as_str()) })
            .insert(Header { key: OFFSET, value: Some(offset.as_str()) })
            .insert(Header { key: FAILED_AT, value: Some(failed_at.as_str()) });
        if let Some(field) = &entry.field {
            headers = headers.insert(Header { key: FIELD, value: Some(field.as_str()) });
        }
        let mut message = FutureRecord::to(&topic).partition(0).payload(&entry.record.record.payload).headers(headers);
        if let Some(key) = &entry.record.record.key {
            message = message.key(key.as_str());
        }
        deliveries.push(log.dead_letters.send_result(message).map_err(|(e, _)| LogError::unavailable(e))?);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(LogError::unavailable(e)),
            Err(_) => return Err(LogError::unavailable("a delivery report was lost")),
        }
    }
    Ok(())
}

fn reader(log: &KafkaLog, source: &str) -> Result<BaseConsumer, LogError> {
    log.config()
        .client()
        .set("group.id", log.config().replay_group(source))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .map_err(LogError::unavailable)
}

pub(crate) async fn read(
    log: &KafkaLog,
    source: &str,
    from: u64,
    max: usize,
) -> Result<Vec<StoredDeadLetter>, LogError> {
    let topic = ensure(log, source).await?;
    let consumer = reader(log, source)?;
    let timeout = log.config().append_timeout;
    blocking(move || {
        let (_, high) = consumer.fetch_watermarks(&topic, 0, timeout).map_err(LogError::unavailable)?;
        let mut out = Vec::new();
        if from as i64 >= high || max == 0 {
            return Ok(out);
        }
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Offset(from as i64)).map_err(LogError::unavailable)?;
        consumer.assign(&list).map_err(LogError::unavailable)?;
        while out.len() < max {
            let Some(message) = consumer.poll(timeout) else {
                return Err(LogError::unavailable("timed out reading dead letters"));
            };
            let message = message.map_err(LogError::unavailable)?;
            let at = || format!("{topic}/0/{}", message.offset());
            let number = |key: &str| -> Result<u64, LogError> {
                header(&message, key)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| LogError::Corrupt(at(), format!("no `{key}` header")))
            };
            let mut record = stored_record(&message)?;
            record.position = Position { partition: number(PARTITION)? as u32, offset: number(OFFSET)? };
            let entry = DeadLetter {
                record,
                reason: header(&message, REASON).unwrap_or_default().to_string(),
                field: header(&message, FIELD).map(str::to_string),
                plugin: header(&message, PLUGIN).unwrap_or_default().to_string(),
                failed_at_us: number(FAILED_AT)? as i64,
            };
            out.push(StoredDeadLetter { sequence: message.offset() as u64, entry });
            if message.offset() + 1 >= high {
                break;
            }
        }
        Ok(out)
    })
    .await
}

pub(crate) async fn replay_cursor(log: &KafkaLog, source: &str) -> Result<u64, LogError> {
    let topic = ensure(log, source).await?;
    let consumer = reader(log, source)?;
    let timeout = log.config().append_timeout;
    blocking(move || {
        let mut list = TopicPartitionList::new();
        list.add_partition(&topic, 0);
        let committed = consumer.committed_offsets(list, timeout).map_err(LogError::unavailable)?;
        Ok(committed
            .elements()
            .first()
            .and_then(|e| match e.offset() {
                Offset::Offset(n) if n >= 0 => Some(n as u64),
                _ => None,
            })
            .unwrap_or(0))
    })
    .await
}

pub(crate) async fn set_replay_cursor(log: &KafkaLog, source: &str, next: u64) -> Result<(), LogError> {
    let topic = ensure(log, source).await?;
    let consumer = reader(log, source)?;
    blocking(move || {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Offset(next as i64)).map_err(LogError::unavailable)?;
        consumer.commit(&list, CommitMode::Sync).map_err(LogError::unavailable)
    })
    .await
}
