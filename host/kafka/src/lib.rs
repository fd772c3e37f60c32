//! The Kafka log: sluice's [`RecordLog`](sluice_log::RecordLog) and
//! [`StreamLog`](sluice_log::StreamLog) on Apache Kafka.
//!
//! - Topics: `<prefix><source>` holds a source's accepted records, `<prefix><source>.dlq` its
//!   dead letters (one partition, so a dead letter's sequence number is its offset). Both are
//!   created on first use with the configured partitions and replication.
//! - Appends: every API request is appended entirely or not at all, and the API answers 202
//!   only once it is durable. A request whose records fit in one message is one idempotent
//!   `acks=all` produce (a message is atomic); larger ones go to transactional producers, which
//!   group concurrent appends into one transaction. Consumers read `read_committed`.
//! - Partitioning: by the plugin's partition key (the patient), so one patient's records keep
//!   their order. An append's records go as one message per partition ([`envelope`]), with the
//!   provenance once in `sluice-*` headers; a record's position is the message offset × 2^16 +
//!   its index in the message.
//! - Idempotency keys: the answer to a request sent with one is written to
//!   `<prefix>Idempotency-Keys` in the same transaction as its records, and looked up in a local
//!   index caught up from that topic at start (`remembered.rs`).
//! - While the broker is unreachable, appends fail at once with `Unavailable` (the API's 503) and
//!   a probe flips the log back to ready when the broker answers again.

mod config;
mod consumer;
mod dead_letters;
mod envelope;
mod headers;
mod producer;
mod remembered;
mod topics;

pub use config::{Compression, KafkaConfig};
pub use producer::KafkaLog;
