//! Creating topics on first use.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use sluice_log::LogError;

use crate::config::KafkaConfig;

/// Creates topics once, remembering which exist.
pub(crate) struct Topics {
    admin: AdminClient<DefaultClientContext>,
    known: Mutex<HashSet<String>>,
}

impl Topics {
    pub fn new(config: &KafkaConfig) -> Result<Self, LogError> {
        let admin = config.client().create().map_err(|e| LogError::Unavailable(e.to_string()))?;
        Ok(Self { admin, known: Mutex::default() })
    }

    /// Makes sure `topic` exists with `partitions` partitions.
    pub async fn ensure(&self, topic: &str, partitions: u32, replication: i16) -> Result<(), LogError> {
        if self.known.lock().unwrap_or_else(|e| e.into_inner()).contains(topic) {
            return Ok(());
        }
        let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(i32::from(replication)));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results =
            self.admin.create_topics([&new], &options).await.map_err(|e| LogError::Unavailable(e.to_string()))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(LogError::Unavailable(format!("cannot create topic {name}: {code}"))),
            }
        }
        self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(topic.to_string());
        Ok(())
    }
}
