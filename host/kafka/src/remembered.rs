//! Answers remembered under idempotency keys, on Kafka. The durable copy is the topic
//! `<prefix>Idempotency-Keys` (upper case, so that no source's topic can be named the same:
//! source names are lower case), one partition, compacted by key and deleted after the window,
//! written in the same transaction as the records each answer is for. Lookups go to a local
//! SQLite index, caught up from the topic when the log connects.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_log::{LogError, Remembered, RememberedIndex};

use crate::config::KafkaConfig;
use crate::consumer::blocking;
use crate::topics::Topics;

/// Answers read from the topic are stored in the index in groups of this many.
const CATCH_UP_GROUP: usize = 1000;

/// Creates the topic if needed, opens the index and reads into it what the topic holds beyond
/// what the index has seen.
pub(crate) async fn open_index(config: &KafkaConfig, topics: &Topics) -> Result<RememberedIndex, LogError> {
    let topic = config.idempotency_topic();
    // Kept a little longer than the window: the index, not the topic, decides what is live.
    let retention_ms = (config.idempotency_window.as_millis() + 3_600_000).to_string();
    let settings = [("cleanup.policy", "compact,delete"), ("retention.ms", retention_ms.as_str())];
    topics.ensure_with(&topic, 1, config.replication, &settings).await?;
    let index = RememberedIndex::open(config.idempotency_index.as_deref(), config.idempotency_window)?;
    let consumer: BaseConsumer = config
        .client()
        .set("group.id", format!("{}.idempotency", config.group_prefix))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(LogError::unavailable)?;
    let timeout = config.append_timeout;
    blocking(move || {
        let (low, high) = consumer.fetch_watermarks(&topic, 0, timeout).map_err(LogError::unavailable)?;
        let from = index.next_offset()?.max(low.max(0) as u64);
        if from >= high.max(0) as u64 {
            return Ok(index);
        }
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Offset(from as i64)).map_err(LogError::unavailable)?;
        consumer.assign(&list).map_err(LogError::unavailable)?;
        let (mut answers, mut next) = (Vec::new(), from);
        loop {
            match consumer.poll(timeout) {
                None => return Err(LogError::unavailable(format!("timed out reading {topic}"))),
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(error)) => return Err(LogError::unavailable(error)),
                Some(Ok(message)) => {
                    next = message.offset() as u64 + 1;
                    if let Some(payload) = message.payload() {
                        let answer: Remembered = serde_json::from_slice(payload)
                            .map_err(|e| LogError::Corrupt(format!("{topic}/0/{}", message.offset()), e.to_string()))?;
                        answers.push(answer);
                    }
                    if answers.len() >= CATCH_UP_GROUP {
                        index.insert_from_log(&answers, next)?;
                        answers.clear();
                    }
                }
            }
        }
        index.insert_from_log(&answers, next)?;
        Ok(index)
    })
    .await
}
