//! The stream core's consumer of one source's topic: explicit assignment at the positions the
//! stream recovered from the warehouse, `read_committed`, commits only when told.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_log::{BoxFuture, LogConsumer, LogError, StoredRun};

use crate::envelope;
use crate::headers::stored_runs;
use crate::producer::KafkaLog;

/// Runs blocking client work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(work).await.map_err(LogError::unavailable)?
}

/// Reads one source's raw topic.
pub(crate) struct KafkaConsumer {
    consumer: Arc<BaseConsumer>,
    topic: String,
    partitions: u32,
    /// Per partition, the first position wanted: a seek into the middle of a message skips the
    /// records before it.
    from: Vec<u64>,
    /// Records read but not returned yet (a message held more than a poll asked for).
    pending: VecDeque<StoredRun>,
    assignment: TopicPartitionList,
    /// Whether `assignment` changed since it was last handed to the client. Seeks are applied
    /// in one `assign` at the next poll: assigning repeatedly while partitions are still
    /// starting trips an assertion in librdkafka.
    reassign: bool,
    timeout: Duration,
}

impl KafkaConsumer {
    pub async fn open(log: &KafkaLog, source: &str) -> Result<Self, LogError> {
        let config = log.config();
        let topic = config.topic(source);
        let partitions = log.topics.ensure(&topic, config.partitions, config.replication).await?;
        let consumer: BaseConsumer = config
            .client()
            .set("group.id", config.stream_group(source))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            // Prefetch a few requests' messages per partition (a message holds a request's
            // records), not librdkafka's 100,000 messages or 64 MiB: behind the producers, the
            // prefetch queues were most of sluice's memory.
            // When a queue is full, look again soon (the 1 s default starved the stream).
            .set("queued.min.messages", "64")
            .set("queued.max.messages.kbytes", "1024")
            .set("fetch.queue.backoff.ms", "5")
            .create()
            .map_err(LogError::unavailable)?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topic,
            partitions,
            from: vec![0; partitions as usize],
            pending: VecDeque::new(),
            assignment: TopicPartitionList::new(),
            reassign: false,
            timeout: config.append_timeout,
        })
    }
}

impl LogConsumer for KafkaConsumer {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn seek(&mut self, partition: u32, offset: u64) -> BoxFuture<'_, Result<(), LogError>> {
        Box::pin(async move {
            let mut assignment = self.assignment.clone();
            let (message, _) = envelope::split(offset);
            let at = Offset::Offset(message as i64);
            match assignment.find_partition(&self.topic, partition as i32) {
                Some(_) => {
                    assignment.set_partition_offset(&self.topic, partition as i32, at).map_err(LogError::unavailable)?
                }
                None => {
                    assignment.add_partition_offset(&self.topic, partition as i32, at).map_err(LogError::unavailable)?
                }
            }
            self.assignment = assignment;
            self.reassign = true;
            self.pending.retain(|r| r.partition != partition);
            if let Some(from) = self.from.get_mut(partition as usize) {
                *from = offset;
            }
            Ok(())
        })
    }

    fn poll(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<StoredRun>, LogError>> {
        if !self.pending.is_empty() {
            let taken = take_runs(&mut self.pending, max);
            return Box::pin(std::future::ready(Ok(taken)));
        }
        // Seeks and polls take turns (`&mut self`): the poll reads a copy of the start positions.
        let (consumer, from) = (self.consumer.clone(), self.from.clone());
        let assignment = std::mem::take(&mut self.reassign).then(|| self.assignment.clone());
        Box::pin(async move {
            let read = blocking(move || {
                if let Some(assignment) = assignment {
                    consumer.assign(&assignment).map_err(LogError::unavailable)?;
                }
                let mut out = Vec::new();
                let mut records = 0;
                let mut timeout = wait;
                // librdkafka queues an error event for every failed connection attempt while
                // the brokers are away, and recovers by itself. Every queued event is drained
                // here: taking one per poll (and backing off after each) left the stream
                // minutes behind the errors of a 30 s outage once the brokers were back.
                let mut error = None;
                while records < max {
                    match consumer.poll(timeout) {
                        None => break,
                        Some(Ok(message)) => {
                            let start = from.get(message.partition() as usize).copied().unwrap_or(0);
                            let before = out.len();
                            stored_runs(&message, start, &mut out)?;
                            records += out[before..].iter().map(StoredRun::len).sum::<usize>();
                        }
                        Some(Err(failed)) => error = Some(failed),
                    }
                    timeout = Duration::ZERO;
                }
                match error {
                    Some(error) if out.is_empty() => Err(LogError::unavailable(error)),
                    _ => Ok(out),
                }
            })
            .await?;
            self.pending.extend(read);
            Ok(take_runs(&mut self.pending, max))
        })
    }

    fn commit(&mut self, partition: u32, next: u64) -> BoxFuture<'_, Result<(), LogError>> {
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        Box::pin(blocking(move || {
            // Kafka stores the message to resume at; the metadata says how many of its records
            // are done.
            let (message, index) = envelope::split(next);
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&topic, partition as i32, Offset::Offset(message as i64))
                .map_err(LogError::unavailable)?;
            if let Some(mut element) = list.find_partition(&topic, partition as i32) {
                element.set_metadata(index.to_string());
            }
            consumer.commit(&list, CommitMode::Sync).map_err(LogError::unavailable)
        }))
    }

    fn committed(&mut self) -> BoxFuture<'_, Result<Vec<(u32, u64)>, LogError>> {
        let (consumer, topic, partitions, timeout) =
            (self.consumer.clone(), self.topic.clone(), self.partitions, self.timeout);
        Box::pin(blocking(move || {
            let mut list = TopicPartitionList::new();
            for partition in 0..partitions {
                list.add_partition(&topic, partition as i32);
            }
            let committed = consumer.committed_offsets(list, timeout).map_err(LogError::unavailable)?;
            Ok(committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(next) if next >= 0 => {
                        let index = e.metadata().parse().unwrap_or(0);
                        Some((
                            e.partition() as u32,
                            envelope::position(e.partition() as u32, next as u64, index).offset,
                        ))
                    }
                    _ => None,
                })
                .collect())
        }))
    }
}

/// Runs from the front of `pending`, at most `max` records (the last one cut there; its rest
/// stays in front).
fn take_runs(pending: &mut VecDeque<StoredRun>, max: usize) -> Vec<StoredRun> {
    let mut taken = Vec::new();
    let mut records = 0;
    while records < max {
        let Some(mut run) = pending.pop_front() else { break };
        if records + run.len() > max {
            pending.push_front(run.split_off(max - records));
        }
        records += run.len();
        taken.push(run);
    }
    taken
}
