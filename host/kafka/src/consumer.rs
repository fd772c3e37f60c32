//! The stream core's consumer of one source's topic: a member of the source's consumer group
//! (cooperative-sticky assignment, so a join or leave moves only the partitions that must
//! move), `read_committed`, and positions stored in a transaction that the group coordinator
//! fences: a member that lost its partitions (paused past the session timeout, cut off) cannot
//! store a position for them, so the warehouse commit it names is never decided.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_log::{BoxFuture, Committed, LogConsumer, LogError, Ownership, StoredRun};

use crate::envelope;
use crate::headers::stored_runs;
use crate::producer::KafkaLog;

/// Runs blocking client work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(work).await.map_err(LogError::unavailable)?
}

/// What the group's rebalances did, as the consumer's callbacks saw them (they run inside
/// `poll`).
#[derive(Default)]
pub(crate) struct GroupContext {
    topic: String,
    /// Changes not yet taken by the stream.
    changes: Mutex<Vec<Ownership>>,
    /// The partitions assigned to this member now.
    owned: Mutex<BTreeSet<u32>>,
    /// Set by a rebalance, so that the poll loop returns before reading further.
    rebalanced: AtomicBool,
}

impl GroupContext {
    fn partitions(&self, list: &TopicPartitionList) -> Vec<u32> {
        list.elements().iter().filter(|e| e.topic() == self.topic).map(|e| e.partition() as u32).collect()
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions = self.partitions(list);
            if partitions.is_empty() {
                return;
            }
            let mut owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
            for partition in &partitions {
                owned.remove(partition);
            }
            tracing::info!(topic = %self.topic, ?partitions, "partitions revoked");
            self.changes.lock().unwrap_or_else(|e| e.into_inner()).push(Ownership::Revoked(partitions));
            self.rebalanced.store(true, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let partitions = self.partitions(list);
                if partitions.is_empty() {
                    return;
                }
                self.owned.lock().unwrap_or_else(|e| e.into_inner()).extend(partitions.iter().copied());
                tracing::info!(topic = %self.topic, ?partitions, "partitions assigned");
                self.changes.lock().unwrap_or_else(|e| e.into_inner()).push(Ownership::Assigned(partitions));
                self.rebalanced.store(true, Ordering::SeqCst);
            }
            Rebalance::Error(error) => tracing::warn!(topic = %self.topic, %error, "rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// Reads one source's raw topic as a member of its consumer group.
pub(crate) struct KafkaConsumer {
    consumer: Arc<BaseConsumer<GroupContext>>,
    /// Stores positions in transactions the group coordinator fences (KIP-447).
    producer: Arc<BaseProducer>,
    topic: String,
    partitions: u32,
    /// Per partition, the first position wanted: records before it (a message's records
    /// before a seek position, records the warehouse already holds) are skipped.
    from: Vec<u64>,
    /// Records read but not returned yet (a message held more than a poll asked for).
    pending: VecDeque<StoredRun>,
    timeout: Duration,
}

impl KafkaConsumer {
    pub async fn open(log: &KafkaLog, source: &str) -> Result<Self, LogError> {
        let config = log.config().clone();
        let topic = config.topic(source);
        let partitions = log.topics.ensure(&topic, config.partitions, config.replication).await?;
        let context = GroupContext { topic: topic.clone(), ..GroupContext::default() };
        let consumer: BaseConsumer<GroupContext> = config
            .client()
            .set("group.id", config.stream_group(source))
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", config.session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", (config.session_timeout.as_millis() / 5).max(100).to_string())
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
            .create_with_context(context)
            .map_err(LogError::unavailable)?;
        consumer.subscribe(&[&topic]).map_err(LogError::unavailable)?;
        let timeout = config.append_timeout;
        // One transactional id per source per instance: a restarted stream fences the
        // transaction its predecessor may have left open.
        let transactional_id = format!("{}.stream.{source}", config.transactional_id);
        let producer = blocking(move || {
            let producer: BaseProducer = config
                .client()
                .set("transactional.id", &transactional_id)
                .set("transaction.timeout.ms", config.transaction_timeout().as_millis().to_string())
                .create()
                .map_err(LogError::unavailable)?;
            producer.init_transactions(timeout).map_err(LogError::unavailable)?;
            Ok(producer)
        })
        .await?;
        Ok(Self {
            consumer: Arc::new(consumer),
            producer: Arc::new(producer),
            topic,
            partitions,
            from: vec![0; partitions as usize],
            pending: VecDeque::new(),
            timeout,
        })
    }
}

/// Whether a failed position commit means this member lost its partitions (its stream must
/// start over), as opposed to something a retry fixes.
fn is_fenced(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fatal
        )
    )
}

impl LogConsumer for KafkaConsumer {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn ownership_changes(&mut self) -> Vec<Ownership> {
        let changes = std::mem::take(&mut *self.consumer.context().changes.lock().unwrap_or_else(|e| e.into_inner()));
        for change in &changes {
            if let Ownership::Revoked(partitions) = change {
                self.pending.retain(|run| !partitions.contains(&run.partition));
            }
        }
        changes
    }

    fn seek(&mut self, partition: u32, offset: u64) -> BoxFuture<'_, Result<(), LogError>> {
        // The group hands a partition over at its stored position, never after `offset` (the
        // stream seeks to max(stored, warehouse)): skipping what comes before is enough.
        let result = match self.from.get_mut(partition as usize) {
            Some(from) => {
                *from = offset;
                Ok(())
            }
            None => Err(LogError::Unavailable(format!("no partition {partition}"))),
        };
        // Runs already read of the partition keep only what is at or after `offset`.
        let pending = std::mem::take(&mut self.pending);
        for mut run in pending {
            if run.partition == partition && run.first < offset {
                if run.end() <= offset {
                    continue;
                }
                run = run.split_off((offset - run.first) as usize);
            }
            self.pending.push_back(run);
        }
        Box::pin(std::future::ready(result))
    }

    fn poll(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<StoredRun>, LogError>> {
        if !self.pending.is_empty() {
            let taken = take_runs(&mut self.pending, max);
            return Box::pin(std::future::ready(Ok(taken)));
        }
        // Seeks and polls take turns (`&mut self`): the poll reads a copy of the start positions.
        let (consumer, from) = (self.consumer.clone(), self.from.clone());
        Box::pin(async move {
            let (read, held) = blocking(move || {
                let first_wanted = |partition: i32| from.get(partition as usize).copied().unwrap_or(0);
                let (mut out, mut held) = (Vec::new(), Vec::new());
                let mut records = 0;
                let mut timeout = wait;
                // librdkafka queues an error event for every failed connection attempt while
                // the brokers are away, and recovers by itself. Every queued event is drained
                // here: taking one per poll (and backing off after each) left the stream
                // minutes behind the errors of a 30 s outage once the brokers were back.
                let mut error = None;
                while records < max {
                    let polled = consumer.poll(timeout);
                    if consumer.context().rebalanced.swap(false, Ordering::SeqCst) {
                        // The stream must see the change before any record that follows it: a
                        // message that came with it is held back until the stream has applied
                        // the change (and trimmed it to the partition's start).
                        if let Some(Ok(message)) = &polled {
                            stored_runs(message, first_wanted(message.partition()), &mut held)?;
                        }
                        break;
                    }
                    match polled {
                        None => break,
                        Some(Ok(message)) => {
                            let before = out.len();
                            stored_runs(&message, first_wanted(message.partition()), &mut out)?;
                            records += out[before..].iter().map(StoredRun::len).sum::<usize>();
                        }
                        Some(Err(failed)) => error = Some(failed),
                    }
                    timeout = Duration::ZERO;
                }
                match error {
                    Some(error) if out.is_empty() && held.is_empty() => Err(LogError::unavailable(error)),
                    _ => Ok((out, held)),
                }
            })
            .await?;
            self.pending.extend(read);
            let taken = take_runs(&mut self.pending, max);
            self.pending.extend(held);
            Ok(taken)
        })
    }

    fn commit(&mut self, positions: Vec<Committed>) -> BoxFuture<'_, Result<(), LogError>> {
        let (consumer, producer, topic, timeout) =
            (self.consumer.clone(), self.producer.clone(), self.topic.clone(), self.timeout);
        Box::pin(blocking(move || {
            {
                let owned = consumer.context().owned.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(lost) = positions.iter().find(|p| !owned.contains(&p.partition)) {
                    return Err(LogError::Fenced(format!("{topic} partition {} is not this member's", lost.partition)));
                }
            }
            if consumer.assignment_lost() {
                return Err(LogError::Fenced(format!("{topic}: this member's assignment was lost")));
            }
            // Kafka stores the message to resume at; the metadata says how many of its records
            // are done, and which warehouse commit this position decides.
            let mut list = TopicPartitionList::new();
            for position in &positions {
                let (message, index) = envelope::split(position.next);
                list.add_partition_offset(&topic, position.partition as i32, Offset::Offset(message as i64))
                    .map_err(LogError::unavailable)?;
                if let Some(mut element) = list.find_partition(&topic, position.partition as i32) {
                    element.set_metadata(match &position.commit {
                        Some(commit) => format!("{index};{commit}"),
                        None => index.to_string(),
                    });
                }
            }
            let group = consumer
                .group_metadata()
                .ok_or_else(|| LogError::Fenced(format!("{topic}: not a member of the group")))?;
            let stored = producer
                .begin_transaction()
                .and_then(|()| producer.send_offsets_to_transaction(&list, &group, timeout))
                .and_then(|()| producer.commit_transaction(timeout));
            match stored {
                Ok(()) => Ok(()),
                Err(error) if is_fenced(&error) => Err(LogError::Fenced(format!("{topic}: {error}"))),
                Err(error) => {
                    // A timed-out commit may still complete: the retry stores the same positions.
                    let _ = producer.abort_transaction(timeout);
                    Err(LogError::unavailable(error))
                }
            }
        }))
    }

    fn committed(&mut self, partitions: Vec<u32>) -> BoxFuture<'_, Result<Vec<Committed>, LogError>> {
        let (consumer, topic, timeout) = (self.consumer.clone(), self.topic.clone(), self.timeout);
        Box::pin(blocking(move || {
            let mut list = TopicPartitionList::new();
            for partition in partitions {
                list.add_partition(&topic, partition as i32);
            }
            let committed = consumer.committed_offsets(list, timeout).map_err(LogError::unavailable)?;
            Ok(committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(next) if next >= 0 => {
                        let (index, commit) = match e.metadata().split_once(';') {
                            Some((index, commit)) => (index, Some(commit.to_string())),
                            None => (e.metadata(), None),
                        };
                        let partition = e.partition() as u32;
                        let next = envelope::position(partition, next as u64, index.parse().unwrap_or(0)).offset;
                        Some(Committed { partition, next, commit })
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
