//! Settings of the Kafka log.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[kafka]`: how sluice uses Kafka when `log.kind = "kafka"`. The partition count and the
/// idempotency window come from `[log]` ([`KafkaConfig::with_log`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Prefix of every topic name (default `sluice.`).
    pub topic_prefix: String,
    /// Partitions of a raw topic created by sluice (`log.partitions`).
    #[serde(skip)]
    pub partitions: u32,
    /// Replication factor of topics created by sluice (-1: the brokers' `default.replication.factor`).
    pub replication: i16,
    /// The producer's transactional id: unique per sluice instance sharing a cluster.
    pub transactional_id: String,
    /// How long an append may wait for the broker before failing with 503.
    #[serde(with = "humantime_serde")]
    pub append_timeout: Duration,
    /// Consumer group prefix: the streams of source `s` on every instance form the group
    /// `<prefix>.stream.<s>`, which shares the source's partitions among them.
    pub group_prefix: String,
    /// How long an instance may stay silent before the group gives its partitions to the
    /// others (librdkafka's `session.timeout.ms`, heartbeats at a fifth of it). Shorter moves
    /// a dead instance's partitions sooner; too short moves them away from a merely busy one.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How long an append that fits in one message waits for others to share its Kafka request
    /// (librdkafka's `linger.ms`; default 1 ms; kept to the microsecond, `"500us"`). Zero
    /// answers a lone request ~1 ms sooner; under load, sharing requests saves librdkafka most
    /// of its CPU and the broker many requests.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// How sluice's producers compress what they send (librdkafka's `compression.codec`).
    /// Consumers read any codec, so changing it needs no migration.
    pub compression: Compression,
    /// How long answers given under an idempotency key are remembered (`log.idempotency_window`).
    #[serde(skip)]
    pub idempotency_window: Duration,
    /// Whether other sluice instances share these topics (set with a shared auth store): a
    /// lookup of a remembered answer that misses the local index reads what they wrote first.
    #[serde(skip)]
    pub shared: bool,
    /// The local SQLite index of remembered answers (rebuilt from the topic when missing);
    /// `None` keeps it in memory, read again from the topic at every start.
    #[serde(skip)]
    pub idempotency_index: Option<PathBuf>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self::new("127.0.0.1:9092")
    }
}

impl KafkaConfig {
    /// Checks what the types cannot: brokers named, topic names Kafka accepts, a replication
    /// factor and timeouts above zero.
    pub fn check(&self) -> Result<(), sluice_config::ValueError> {
        let topic_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        sluice_config::check(
            "kafka",
            [
                ("brokers", "at least one host:port", self.brokers.trim().is_empty()),
                (
                    "topic_prefix",
                    "letters, digits, `.`, `_` and `-` (Kafka's topic names), at most 200 of them",
                    !self.topic_prefix.chars().all(topic_char) || self.topic_prefix.len() > 200,
                ),
                ("transactional_id", "set", self.transactional_id.trim().is_empty()),
                (
                    "replication",
                    "at least 1, or -1 for the brokers' default",
                    self.replication < 1 && self.replication != -1,
                ),
                ("append_timeout", "at least 1ms", self.append_timeout < Duration::from_millis(1)),
                ("session_timeout", "at least 1s", self.session_timeout < Duration::from_secs(1)),
            ],
        )
    }

    /// Defaults for `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: "sluice.".into(),
            partitions: 4,
            replication: 1,
            transactional_id: "sluice".into(),
            append_timeout: Duration::from_secs(10),
            group_prefix: "sluice".into(),
            session_timeout: Duration::from_secs(10),
            linger: Duration::from_millis(1),
            compression: Compression::Lz4,
            idempotency_window: sluice_log::DEFAULT_IDEMPOTENCY_WINDOW,
            shared: false,
            idempotency_index: None,
        }
    }

    /// These settings with what `[log]` says for every backend, and the index of remembered
    /// answers at `idempotency_index`.
    pub fn with_log(self, log: &sluice_log::LogConfig, idempotency_index: Option<PathBuf>) -> Self {
        Self { partitions: log.partitions, idempotency_window: log.idempotency_window, idempotency_index, ..self }
    }

    /// How long a transaction may stay open before the broker aborts it: an instance killed
    /// in the middle of one holds back `read_committed` readers of what it touched (and the
    /// position of a partition it was committing) at most this long. Nothing is committed
    /// after an append's timeout, so a little more than that is enough.
    pub fn transaction_timeout(&self) -> Duration {
        self.append_timeout.max(Duration::from_secs(1)) + Duration::from_secs(5)
    }

    /// The raw topic of `source`.
    pub fn topic(&self, source: &str) -> String {
        format!("{}{source}", self.topic_prefix)
    }

    /// The dead-letter topic of `source`.
    pub fn dead_letter_topic(&self, source: &str) -> String {
        format!("{}{source}.dlq", self.topic_prefix)
    }

    /// The topic of answers remembered under idempotency keys (upper case: no source name is).
    pub fn idempotency_topic(&self) -> String {
        format!("{}Idempotency-Keys", self.topic_prefix)
    }

    /// The consumer group of `source`'s stream.
    pub fn stream_group(&self, source: &str) -> String {
        format!("{}.stream.{source}", self.group_prefix)
    }

    /// The consumer group that keeps `source`'s dead-letter replay cursor.
    pub fn replay_group(&self, source: &str) -> String {
        format!("{}.replay.{source}", self.group_prefix)
    }

    /// Client settings of a producer: [`Self::client`] and the compression codec.
    pub(crate) fn producer_client(&self) -> rdkafka::ClientConfig {
        let mut config = self.client();
        config.set("compression.codec", self.compression.codec());
        config
    }

    pub(crate) fn client(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "sluice")
            // Small requests (a single-record append, a transaction commit) must not wait for
            // Nagle's algorithm to coalesce them (see docs/performance.md).
            .set("socket.nagle.disable", "true");
        config
    }
}

/// `kafka.compression`: the codec of the record batches sluice's producers send.
///
/// A request's records travel as a few large messages of similar JSON or CSV text, which lz4
/// shrinks about threefold for little CPU: the broker then copies, stores and serves a third of
/// the bytes (docs/performance.md). `none` suits bodies that are compressed already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Batches travel as they are.
    None,
    /// LZ4 (the default): fast on both sides.
    #[default]
    Lz4,
    /// Snappy: a little faster and larger than lz4.
    Snappy,
}

impl Compression {
    /// librdkafka's name of the codec.
    pub fn codec(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lz4 => "lz4",
            Self::Snappy => "snappy",
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::producer::BaseProducer;

    use super::*;

    #[test]
    fn every_offered_codec_is_built_into_librdkafka() {
        // librdkafka refuses a codec it was built without when the producer is created.
        for compression in [Compression::None, Compression::Lz4, Compression::Snappy] {
            let config = KafkaConfig { compression, ..KafkaConfig::default() };
            let created = config.producer_client().create::<BaseProducer>();
            assert!(created.is_ok(), "{compression:?}: {:?}", created.err());
        }
    }

    #[test]
    fn an_unknown_codec_is_refused_naming_the_choices() {
        let error = serde_json::from_value::<Compression>(serde_json::json!("zstd")).unwrap_err();
        assert_eq!(error.to_string(), "unknown variant `zstd`, expected one of `none`, `lz4`, `snappy`");
        assert_eq!(KafkaConfig::default().compression, Compression::Lz4);
    }
}
