//! Creating topics on first use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;
use sluice_log::LogError;

use crate::config::KafkaConfig;

/// Creates topics once, remembering which exist and their partition counts.
pub(crate) struct Topics {
    admin: AdminClient<DefaultClientContext>,
    metadata: Arc<BaseProducer>,
    timeout: Duration,
    known: Mutex<HashMap<String, u32>>,
}

impl Topics {
    pub fn new(config: &KafkaConfig) -> Result<Self, LogError> {
        let admin = config.client().create().map_err(LogError::unavailable)?;
        let metadata = Arc::new(config.client().create().map_err(LogError::unavailable)?);
        Ok(Self { admin, metadata, timeout: config.append_timeout, known: Mutex::default() })
    }

    /// Makes sure `topic` exists, creating it with `partitions` partitions, and returns how many
    /// partitions it has (a topic created before may have a different count).
    pub async fn ensure(&self, topic: &str, partitions: u32, replication: i16) -> Result<u32, LogError> {
        self.ensure_with(topic, partitions, replication, &[]).await
    }

    /// [`ensure`](Self::ensure), creating the topic with the topic-level `settings` (e.g.
    /// `cleanup.policy`). A topic that exists already keeps its own.
    pub async fn ensure_with(
        &self,
        topic: &str,
        partitions: u32,
        replication: i16,
        settings: &[(&str, &str)],
    ) -> Result<u32, LogError> {
        if let Some(&count) = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(topic) {
            return Ok(count);
        }
        let mut new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(i32::from(replication)));
        for (key, value) in settings {
            new = new.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results =
            self.admin.create_topics([&new], &options).await.map_err(|e| LogError::Unavailable(e.to_string()))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(LogError::Unavailable(format!("cannot create topic {name}: {code}"))),
            }
        }
        let (metadata, name, timeout) = (self.metadata.clone(), topic.to_string(), self.timeout);
        let count = tokio::task::spawn_blocking(move || {
            // A topic just created takes a moment to show its partitions in the metadata.
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let metadata = metadata.client().fetch_metadata(Some(&name), timeout).map_err(LogError::unavailable)?;
                let count = metadata.topics().iter().find(|t| t.name() == name).map_or(0, |t| t.partitions().len());
                if count > 0 {
                    return Ok(count as u32);
                }
                if std::time::Instant::now() > deadline {
                    return Err(LogError::Unavailable(format!("topic {name} has no partitions after {timeout:?}")));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .map_err(LogError::unavailable)??;
        self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(topic.to_string(), count);
        Ok(count)
    }
}
