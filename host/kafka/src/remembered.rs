//! Answers remembered under idempotency keys, on Kafka. The durable copy is the topic
//! `<prefix>Idempotency-Keys` (upper case, so that no source's topic can be named the same:
//! source names are lower case), one partition, compacted by key and deleted after the window,
//! written in the same transaction as the records each answer is for. Lookups go to a local
//! SQLite index, caught up from the topic when the log connects. When other instances write
//! the topic too ([`KafkaConfig::shared`]), a lookup that misses first catches the index up to
//! the topic's end ([`Follower`]): an answer another instance gave before the lookup began is
//! found.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
/// what the index has seen; the follower keeps reading it for lookups that miss.
pub(crate) async fn open_index(config: &KafkaConfig, topics: &Topics) -> Result<(RememberedIndex, Follower), LogError> {
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
    // A `read_committed` client's watermark query answers the last *stable* offset, which moves
    // only once the broker has written a transaction's markers, after its commit returned:
    // the end is asked of a `read_uncommitted` client, and the reader waits until its position
    // has passed it.
    let watermarks: BaseConsumer =
        config.client().set("isolation.level", "read_uncommitted").create().map_err(LogError::unavailable)?;
    let follower = Follower {
        reader: Mutex::new(Reader { consumer, watermarks, topic, assigned: false, served: 0 }),
        requests: AtomicU64::new(0),
        timeout: config.append_timeout,
    };
    // At start, an instance killed in the middle of a transaction holds the topic's readers
    // back until the broker aborts it: wait that long.
    let first_read = config.transaction_timeout() + config.append_timeout;
    blocking(move || {
        follower.reader.lock().unwrap_or_else(|e| e.into_inner()).catch_up(&index, first_read)?;
        Ok((index, follower))
    })
    .await
}

/// Reads the topic into the index on demand, one reader for every lookup waiting.
pub(crate) struct Follower {
    reader: Mutex<Reader>,
    /// Catch-ups asked for so far.
    requests: AtomicU64,
    timeout: Duration,
}

impl Follower {
    /// Returns once the index holds every answer the topic held when this was called (answers
    /// of transactions still open then are waited for, up to the append timeout). Concurrent
    /// callers share one read: a read that began after a caller asked serves it.
    pub(crate) fn catch_up(&self, index: &RememberedIndex) -> Result<(), LogError> {
        let ticket = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if reader.served >= ticket {
            return Ok(());
        }
        let covered = self.requests.load(Ordering::SeqCst);
        reader.catch_up(index, self.timeout)?;
        reader.served = covered;
        Ok(())
    }
}

struct Reader {
    consumer: BaseConsumer,
    /// Asks for the topic's end, committed or not.
    watermarks: BaseConsumer,
    topic: String,
    /// Whether the consumer is assigned the topic (it then reads on from where it is).
    assigned: bool,
    /// Tickets up to this one are served.
    served: u64,
}

impl Reader {
    /// Reads from the index's next offset to the topic's end as of now.
    fn catch_up(&mut self, index: &RememberedIndex, timeout: Duration) -> Result<(), LogError> {
        let topic = self.topic.clone();
        let (low, high) = self.watermarks.fetch_watermarks(&topic, 0, timeout).map_err(LogError::unavailable)?;
        let (low, high) = (low.max(0) as u64, high.max(0) as u64);
        let from = index.next_offset()?.max(low);
        if from >= high {
            return Ok(());
        }
        if !self.assigned {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&topic, 0, Offset::Offset(from as i64)).map_err(LogError::unavailable)?;
            self.consumer.assign(&list).map_err(LogError::unavailable)?;
            self.assigned = true;
        }
        let deadline = Instant::now() + timeout;
        let (mut answers, mut next) = (Vec::new(), from);
        let result = loop {
            // `read_committed`: the position passes aborted records and transaction markers
            // too, and stops before a transaction still open.
            let position = self.position().unwrap_or(next);
            if position >= high {
                next = next.max(position);
                break Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(LogError::Unavailable(format!("timed out reading {topic} up to offset {high}")));
            }
            match self.consumer.poll(left.min(Duration::from_millis(100))) {
                None | Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) => break Err(LogError::unavailable(error)),
                Some(Ok(message)) => {
                    next = message.offset() as u64 + 1;
                    if let Some(payload) = message.payload() {
                        match serde_json::from_slice::<Remembered>(payload) {
                            Ok(answer) => answers.push(answer),
                            Err(e) => {
                                break Err(LogError::Corrupt(format!("{topic}/0/{}", message.offset()), e.to_string()));
                            }
                        }
                    }
                    if answers.len() >= CATCH_UP_GROUP {
                        index.insert_from_log(&answers, next)?;
                        answers.clear();
                    }
                }
            }
        };
        if result.is_err() {
            // Read again from the index's offset next time.
            let _ = self.consumer.unassign();
            self.assigned = false;
        }
        index.insert_from_log(&answers, next)?;
        result
    }

    /// The consumer's position in the topic, once it has one.
    fn position(&self) -> Option<u64> {
        let position = self.consumer.position().ok()?;
        match position.find_partition(&self.topic, 0)?.offset() {
            Offset::Offset(at) if at >= 0 => Some(at as u64),
            _ => None,
        }
    }
}
