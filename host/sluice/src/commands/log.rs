//! Opening the configured log: the embedded spool or Kafka.

use std::sync::Arc;

use anyhow::Context;
use sluice_kafka::KafkaLog;
use sluice_log::{SpoolConfig, SqliteSpool, StreamLog};

use crate::config::{Config, LogKind};
use crate::paths::Paths;

/// Opens the log `config` names.
pub async fn open(paths: &Paths, config: &Config) -> anyhow::Result<Arc<dyn StreamLog>> {
    Ok(match config.log.kind {
        LogKind::Spool => {
            let spool_config = SpoolConfig {
                partitions: config.log.partitions,
                idempotency_window: config.log.idempotency_window(),
                retention: config.log.retention,
                ..SpoolConfig::new(paths.spool())
            };
            let spool = SqliteSpool::open(spool_config)
                .with_context(|| format!("cannot open the spool {}", paths.spool().display()))?;
            Arc::new(spool)
        }
        LogKind::Kafka => {
            let index = paths.data_dir().join("kafka-idempotency.db");
            Arc::new(KafkaLog::connect(config.log.kafka(Some(index))).await?)
        }
    })
}
