//! Appends: a few transactional producers, each on its own thread, each grouping the appends
//! that queued while it was busy into one transaction.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, FutureProducer, FutureRecord, Producer};
use sluice_log::{
    BoxFuture, DeadLetter, LogConsumer, LogError, Position, Provenance, RecordLog, Remembered, RememberedIndex, Run,
    StoredDeadLetter, StreamLog,
};
use tokio::sync::oneshot;

use crate::config::KafkaConfig;
use crate::envelope::{self, Planned};
use crate::headers::record_headers;
use crate::topics::Topics;

/// Transactional producers writing at once. While one waits for its transaction to commit the
/// others take the appends that arrive meanwhile, so an append waits for about one transaction,
/// not for the one in progress and then its own. Two, not more: each transaction costs the
/// broker a coordinator round and markers on every partition it touched, and with four writers
/// the groups were smaller, the broker spent 52–72% of a core instead of 42–44% at 100k
/// records/s, and appends waited longer (docs/performance.md). Fixed, not configurable: every
/// start fences all of these ids, so that no transaction of a previous run stays open.
const WRITERS: usize = 2;

struct Append {
    topic: String,
    provenance: Provenance,
    /// Number of records appended.
    records: usize,
    /// The messages that carry them.
    messages: Vec<Planned>,
    /// The answers to remember in the same transaction: topic, key and JSON value of each.
    answers: Vec<(String, String, Vec<u8>)>,
    /// When the append's timeout ends: its transaction is not committed after it.
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<Position>, LogError>>,
}

/// The Kafka log. See the crate documentation.
pub struct KafkaLog {
    pub(crate) config: KafkaConfig,
    pub(crate) topics: Arc<Topics>,
    appends: mpsc::Sender<Append>,
    /// The last append (or probe after a failed one) reached the brokers.
    ready: Arc<AtomicBool>,
    /// The brokers answered the health probe (every half second): what /readyz reports.
    healthy: Arc<AtomicBool>,
    appended: AtomicU64,
    /// Sends appends that fit in one message (one message is atomic without a transaction);
    /// replaced when it fails fatally.
    direct: Mutex<FutureProducer>,
    pub(crate) dead_letters: FutureProducer,
    /// Answers remembered under idempotency keys, for lookups.
    remembered: Arc<RememberedIndex>,
    /// Catches the index up with what other instances remembered.
    follower: Arc<crate::remembered::Follower>,
}

impl KafkaLog {
    /// Connects to the brokers of `config`. Fails when they do not answer within the append
    /// timeout, so that a wrong address is reported at start-up.
    pub async fn connect(config: KafkaConfig) -> Result<Self, LogError> {
        let topics = Arc::new(Topics::new(&config)?);
        let probe: BaseProducer = config.client().create().map_err(LogError::unavailable)?;
        let timeout = config.append_timeout;
        let probe = tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, timeout).map(|_| probe))
            .await
            .map_err(LogError::unavailable)?
            .map_err(|e| LogError::Unavailable(format!("Kafka at {} does not answer: {e}", config.brokers)))?;
        let dead_letters: FutureProducer = config
            .producer_client()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", config.append_timeout.as_millis().to_string())
            .create()
            .map_err(LogError::unavailable)?;
        let direct = Mutex::new(direct_producer(&config)?);
        let ready = Arc::new(AtomicBool::new(true));
        let probe = Arc::new(probe);
        // Each writer starts its transactions before anything is read: that fences the previous
        // run's producers and ends their open transactions. Until then a `read_committed` reader
        // stops at the first open transaction, and the answers the other writer committed after
        // it would be missing from the index below: a retry of such a request, whose answer a
        // kill lost, would then be appended a second time.
        let mut writers = Vec::with_capacity(WRITERS);
        for index in 0..WRITERS {
            // The first writer keeps the configured id as it is; the others add their number.
            let transactional_id = match index {
                0 => config.transactional_id.clone(),
                n => format!("{}.{n}", config.transactional_id),
            };
            let mut writer = Writer {
                config: config.clone(),
                transactional_id,
                producer: None,
                probe: probe.clone(),
                ready: ready.clone(),
            };
            let writer = tokio::task::spawn_blocking(move || writer.producer(None).map(|_| ()).map(|()| writer))
                .await
                .map_err(LogError::unavailable)?
                .map_err(LogError::Unavailable)?;
            writers.push(writer);
        }
        let (remembered, follower) = crate::remembered::open_index(&config, &topics).await?;
        let (remembered, follower) = (Arc::new(remembered), Arc::new(follower));
        let (appends, rx) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        for (index, writer) in writers.into_iter().enumerate() {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("sluice-kafka-{index}"))
                .spawn(move || writer.run(&rx))
                .map_err(LogError::unavailable)?;
        }
        let healthy = Arc::new(AtomicBool::new(true));
        start_health_probe(config.idempotency_topic(), probe, Arc::downgrade(&healthy))?;
        Ok(Self {
            config,
            topics,
            appends,
            ready,
            healthy,
            appended: AtomicU64::new(0),
            direct,
            dead_letters,
            remembered,
            follower,
        })
    }

    /// The settings.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }
}

impl KafkaLog {
    /// Appends records that travel in one message without a transaction: the message is
    /// written entirely or not at all, and the wait is one produce round trip, not a
    /// transaction's three.
    async fn append_direct(
        &self,
        topic: &str,
        provenance: &Provenance,
        count: usize,
        message: &Planned,
    ) -> Result<Vec<Position>, LogError> {
        let record = kafka_record(topic, provenance, message);
        let producer = self.direct.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let delivery = producer.send_result(record).map_err(|(e, _)| LogError::unavailable(e))?;
        let offset = match delivery.await {
            Ok(Ok(delivery)) => delivery.offset as u64,
            Ok(Err((error, _))) => {
                self.ready.store(false, Ordering::SeqCst);
                tracing::error!(%error, "Kafka append failed");
                if producer.client().fatal_error().is_some() {
                    // An idempotent producer that failed fatally refuses every later message.
                    *self.direct.lock().unwrap_or_else(|e| e.into_inner()) = direct_producer(&self.config)?;
                }
                return Err(LogError::Unavailable(format!("records were not delivered: {error}")));
            }
            Err(_) => return Err(LogError::unavailable("a delivery report was lost")),
        };
        let mut positions = vec![Position { partition: 0, offset: 0 }; count];
        envelope::place(message, offset, &mut positions);
        Ok(positions)
    }
}

impl KafkaLog {
    /// Appends `records`, with `answers` remembered in the same transaction.
    async fn append_with(
        &self,
        source: &str,
        provenance: &Provenance,
        run: Run,
        answers: &[Remembered],
    ) -> Result<Vec<Position>, LogError> {
        if !self.ready.load(Ordering::SeqCst) {
            return Err(LogError::Unavailable(format!("Kafka at {} is unreachable", self.config.brokers)));
        }
        let timeout = self.config.append_timeout;
        let deadline = Instant::now() + timeout;
        let topic = self.config.topic(source);
        let late = || LogError::Unavailable(format!("Kafka did not take the records within {timeout:?}"));
        let partitions =
            tokio::time::timeout(timeout, self.topics.ensure(&topic, self.config.partitions, self.config.replication))
                .await
                .map_err(|_| late())??;
        let fallback = self.appended.fetch_add(1, Ordering::Relaxed);
        let messages = envelope::plan(&run, partitions, fallback);
        let count = run.len();
        drop(run);
        if let ([message], []) = (&messages[..], answers) {
            let left = deadline.saturating_duration_since(Instant::now());
            return tokio::time::timeout(left, self.append_direct(&topic, provenance, count, message))
                .await
                .map_err(|_| late())?;
        }
        let answers = answers
            .iter()
            .map(|a| {
                let value = serde_json::to_vec(a).map_err(LogError::unavailable)?;
                Ok::<_, LogError>((
                    self.config.idempotency_topic(),
                    Remembered::log_key(&a.source, &a.user, &a.key),
                    value,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (reply, wait) = oneshot::channel();
        let append =
            Append { topic, provenance: provenance.clone(), records: count, messages, answers, deadline, reply };
        self.appends.send(append).map_err(|_| LogError::unavailable("the Kafka writer stopped"))?;
        wait.await.map_err(|_| LogError::unavailable("the Kafka writer stopped"))?
    }
}

impl RecordLog for KafkaLog {
    fn append<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        run: Run,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>> {
        Box::pin(self.append_with(source, provenance, run, &[]))
    }

    fn append_remembered<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        run: Run,
        answers: Vec<Remembered>,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>> {
        Box::pin(async move {
            let positions = self.append_with(source, provenance, run, &answers).await?;
            // The topic holds the answers now; should the index miss one, the next start reads
            // it from there.
            let index = self.remembered.clone();
            let stored =
                crate::consumer::blocking(move || answers.iter().try_for_each(|answer| index.insert(answer))).await;
            if let Err(error) = stored {
                tracing::warn!(%error, "an idempotency answer is in Kafka but not in the local index");
            }
            Ok(positions)
        })
    }

    fn remembered<'a>(
        &'a self,
        source: &'a str,
        user: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Remembered>, LogError>> {
        let (index, source, user, key) =
            (self.remembered.clone(), source.to_string(), user.to_string(), key.to_string());
        let follower = self.config.shared.then(|| self.follower.clone());
        Box::pin(crate::consumer::blocking(move || {
            let found = index.get(&source, &user, &key)?;
            match follower {
                // Another instance may have answered since the index last read the topic.
                Some(follower) if found.is_none() => {
                    follower.catch_up(&index)?;
                    index.get(&source, &user, &key)
                }
                _ => Ok(found),
            }
        }))
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && self.healthy.load(Ordering::SeqCst)
    }

    fn kind(&self) -> &'static str {
        "kafka"
    }
}

impl StreamLog for KafkaLog {
    fn consumer<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Box<dyn LogConsumer>, LogError>> {
        Box::pin(async move {
            let consumer = crate::consumer::KafkaConsumer::open(self, source).await?;
            Ok(Box::new(consumer) as Box<dyn LogConsumer>)
        })
    }

    fn dead_letter<'a>(&'a self, source: &'a str, entries: Vec<DeadLetter>) -> BoxFuture<'a, Result<(), LogError>> {
        Box::pin(crate::dead_letters::append(self, source, entries))
    }

    fn dead_letters<'a>(
        &'a self,
        source: &'a str,
        from: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredDeadLetter>, LogError>> {
        Box::pin(crate::dead_letters::read(self, source, from, max))
    }

    fn replay_cursor<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<u64, LogError>> {
        Box::pin(crate::dead_letters::replay_cursor(self, source))
    }

    fn set_replay_cursor<'a>(&'a self, source: &'a str, next: u64) -> BoxFuture<'a, Result<(), LogError>> {
        Box::pin(crate::dead_letters::set_replay_cursor(self, source, next))
    }
}

/// The Kafka record of a planned message: to its partition, with the provenance in headers.
fn kafka_record<'a>(topic: &'a str, provenance: &Provenance, message: &'a Planned) -> FutureRecord<'a, (), Vec<u8>> {
    FutureRecord::to(topic)
        .partition(message.partition as i32)
        .payload(&message.value)
        .headers(record_headers(envelope::CONTENT_TYPE, provenance))
}

/// How often the brokers are asked whether they answer, and how long an answer may take.
const PROBE_EVERY: Duration = Duration::from_millis(500);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Asks the brokers for `topic`'s metadata every [`PROBE_EVERY`] and records whether they
/// answered within [`PROBE_TIMEOUT`], until the log is dropped: /readyz says a broker is gone
/// within about a second and a half, so that a load balancer stops routing here.
fn start_health_probe(
    topic: String,
    probe: Arc<BaseProducer>,
    healthy: std::sync::Weak<AtomicBool>,
) -> Result<(), LogError> {
    thread::Builder::new()
        .name("sluice-kafka-probe".into())
        .spawn(move || {
            loop {
                thread::sleep(PROBE_EVERY);
                let answered = probe.client().fetch_metadata(Some(&topic), PROBE_TIMEOUT).is_ok();
                let Some(healthy) = healthy.upgrade() else { return };
                let was = healthy.swap(answered, Ordering::SeqCst);
                if was && !answered {
                    tracing::warn!("Kafka does not answer; /readyz reports not ready");
                } else if !was && answered {
                    tracing::info!("Kafka answers again");
                }
            }
        })
        .map(|_| ())
        .map_err(LogError::unavailable)
}

/// `duration` as librdkafka's fractional milliseconds (`linger.ms` takes `0.5`): whole
/// milliseconds would make a linger of `"500us"` none at all.
fn fractional_millis(duration: Duration) -> String {
    (duration.as_micros() as f64 / 1000.0).to_string()
}

/// The idempotent producer of appends that fit in one message.
fn direct_producer(config: &KafkaConfig) -> Result<FutureProducer, LogError> {
    config
        .producer_client()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", fractional_millis(config.linger))
        .set("message.timeout.ms", config.append_timeout.as_millis().to_string())
        .create()
        .map_err(LogError::unavailable)
}

/// A writer thread: groups appends into transactions.
struct Writer {
    config: KafkaConfig,
    transactional_id: String,
    producer: Option<FutureProducer>,
    probe: Arc<BaseProducer>,
    ready: Arc<AtomicBool>,
}

impl Writer {
    fn run(mut self, rx: &Mutex<mpsc::Receiver<Append>>) {
        // Fence what a previous run left open under this id now, not at the first append: an
        // open transaction holds back every read_committed consumer of its partitions.
        if let Err(error) = self.producer(None) {
            tracing::warn!(%error, "Kafka transactions not ready yet");
        }
        loop {
            // One writer at a time waits for appends; it takes all that are queued and lets the
            // next writer wait while it writes them.
            let group = {
                let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
                let first = match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(append) => append,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        drop(rx);
                        self.probe_if_down();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                let mut group = vec![first];
                while group.len() < 1024 {
                    match rx.try_recv() {
                        Ok(more) => group.push(more),
                        Err(_) => break,
                    }
                }
                group
            };
            // Appends whose time ran out while they waited are answered now, not written.
            let now = Instant::now();
            let (group, expired): (Vec<Append>, Vec<Append>) = group.into_iter().partition(|a| a.deadline > now);
            for append in expired {
                let _ = append.reply.send(Err(LogError::unavailable("Kafka did not take the records in time")));
            }
            if group.is_empty() {
                continue;
            }
            match self.write(&group) {
                Ok(positions) => {
                    self.ready.store(true, Ordering::SeqCst);
                    for (append, positions) in group.into_iter().zip(positions) {
                        let _ = append.reply.send(Ok(positions));
                    }
                }
                Err(error) => {
                    // Whatever was sent belongs to a transaction that is never committed: the
                    // next producer's init fences and aborts it, and read_committed consumers
                    // never see it.
                    self.producer = None;
                    self.ready.store(false, Ordering::SeqCst);
                    tracing::error!(%error, "Kafka append failed");
                    for append in group {
                        let _ = append.reply.send(Err(LogError::Unavailable(error.clone())));
                    }
                }
            }
        }
    }

    fn probe_if_down(&self) {
        if !self.ready.load(Ordering::SeqCst)
            && self.probe.client().fetch_metadata(None, Duration::from_secs(2)).is_ok()
        {
            tracing::info!("Kafka answers again");
            self.ready.store(true, Ordering::SeqCst);
        }
    }

    fn producer(&mut self, deadline: Option<Instant>) -> Result<&FutureProducer, String> {
        if self.producer.is_none() {
            let timeout = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => self.config.append_timeout,
            };
            let producer: FutureProducer = self
                .config
                .producer_client()
                .set("transactional.id", &self.transactional_id)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "1")
                .set("message.timeout.ms", timeout.as_millis().to_string())
                .set("transaction.timeout.ms", self.config.transaction_timeout().as_millis().to_string())
                .create()
                .map_err(|e| format!("cannot create the Kafka producer: {e}"))?;
            producer.init_transactions(timeout).map_err(|e| format!("cannot start Kafka transactions: {e}"))?;
            self.producer = Some(producer);
        }
        Ok(self.producer.as_ref().expect("just created"))
    }

    fn write(&mut self, group: &[Append]) -> Result<Vec<Vec<Position>>, String> {
        let timeout = self.config.append_timeout;
        // Nothing is committed after the first append's timeout: its client has its 503 by then.
        let deadline = group.iter().map(|a| a.deadline).min().expect("a group is never empty");
        let producer = self.producer(Some(deadline))?;
        let begun = std::time::Instant::now();
        producer.begin_transaction().map_err(|e| format!("cannot begin a Kafka transaction: {e}"))?;
        // Per append, the delivery of each of its messages.
        let mut deliveries = Vec::with_capacity(group.len());
        let mut answers = Vec::new();
        for append in group {
            let mut pending = Vec::with_capacity(append.messages.len());
            for message in &append.messages {
                let record = kafka_record(&append.topic, &append.provenance, message);
                pending.push(producer.send_result(record).map_err(|(e, _)| format!("cannot queue records: {e}"))?);
            }
            deliveries.push(pending);
            for (topic, key, value) in &append.answers {
                let record: FutureRecord<'_, String, Vec<u8>> =
                    FutureRecord::to(topic).partition(0).key(key).payload(value);
                answers.push(producer.send_result(record).map_err(|(e, _)| format!("cannot queue an answer: {e}"))?);
            }
        }
        for delivery in answers {
            match futures::executor::block_on(delivery) {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(format!("an idempotency answer was not delivered: {e}")),
                Err(_) => return Err("a delivery report was lost".to_string()),
            }
        }
        let sent = std::time::Instant::now();
        tracing::debug!(begin_and_send = ?begun.elapsed(), "records queued");
        // commit_transaction flushes first, and rust-rdkafka's flush polls in steps of 100 ms,
        // which made every append wait 100 ms. The producer's own polling thread serves the
        // delivery reports as they come: wait for each (each resolves by message.timeout.ms at
        // the latest), so that nothing is in flight when the commit flushes.
        let positions = group
            .iter()
            .zip(deliveries)
            .map(|(append, pending)| {
                let mut positions = vec![Position { partition: 0, offset: 0 }; append.records];
                for (message, delivery) in append.messages.iter().zip(pending) {
                    let offset = match futures::executor::block_on(delivery) {
                        Ok(Ok(d)) => d.offset as u64,
                        Ok(Err((e, _))) => return Err(format!("records were not delivered: {e}")),
                        Err(_) => return Err("a delivery report was lost".to_string()),
                    };
                    envelope::place(message, offset, &mut positions);
                }
                Ok(positions)
            })
            .collect::<Result<Vec<_>, String>>()?;
        // A report is handed over just before its message leaves the queue: wait for that step.
        while producer.in_flight_count() > 0 {
            if std::time::Instant::now() > deadline {
                return Err(format!("Kafka did not acknowledge the records within {timeout:?}"));
            }
            std::thread::yield_now();
        }
        tracing::debug!(flush = ?sent.elapsed(), "records acknowledged");
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("Kafka did not acknowledge the records within {timeout:?}"));
        }
        producer.commit_transaction(left).map_err(|e| format!("Kafka did not commit the records: {e}"))?;
        tracing::debug!(appends = group.len(), commit = ?sent.elapsed(), "transaction committed");
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linger_under_a_millisecond_is_kept() {
        assert_eq!(fractional_millis(Duration::from_micros(500)), "0.5");
        assert_eq!(fractional_millis(Duration::from_millis(1)), "1");
        assert_eq!(fractional_millis(Duration::ZERO), "0");
        assert_eq!(fractional_millis(Duration::from_micros(1_250)), "1.25");
    }
}
