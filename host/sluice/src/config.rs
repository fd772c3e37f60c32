//! The configuration file (TOML) and its environment overrides.
//!
//! Every key can be set in the file or overridden by an environment variable named
//! `SLUICE__<SECTION>__<KEY>`, e.g. `SLUICE__SERVER__LISTEN=0.0.0.0:8080`. Unknown keys are an
//! error, in the file and in the environment alike.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything `sluice serve` can be told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP server.
    pub server: ServerConfig,
    /// Plugin loading and sandbox limits.
    pub plugins: PluginsConfig,
    /// Login failure limits and verification caching.
    pub auth: AuthConfig,
    /// The log.
    pub log: LogConfig,
    /// The warehouse.
    pub warehouse: WarehouseSettings,
    /// The stream core.
    pub stream: StreamSettings,
    /// The catalog (Trino).
    pub catalog: CatalogSettings,
    /// Sources beyond the default one-per-plugin: name → plugin and settings.
    pub sources: BTreeMap<String, SourceConfig>,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most records per request.
    pub max_records_per_request: usize,
    /// Deepest JSON nesting accepted.
    pub max_json_depth: usize,
    /// A request's headers must arrive within this; an idle keep-alive connection is closed
    /// after it too (a duration: `"30s"`).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request's body must arrive within this once its headers have (408 otherwise).
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Client connections held at once (0: derived from the open-file limit, keeping a quarter
    /// of it, at least 256, for sluice's own files and sockets; at most 8,192).
    pub max_connections: usize,
    /// Client connections held at once from one address.
    pub max_connections_per_address: usize,
    /// At shutdown, how long requests in progress may take before their connections are cut.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = sluice_api::ApiLimits::default();
        let connections = sluice_api::ServerLimits::default();
        Self {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: limits.max_body_bytes,
            max_records_per_request: limits.max_records,
            max_json_depth: limits.max_json_depth,
            header_timeout: connections.header_timeout,
            body_timeout: limits.body_timeout,
            max_connections: 0,
            max_connections_per_address: connections.max_connections_per_address,
            drain_timeout: connections.drain,
        }
    }
}

impl ServerConfig {
    /// The per-request limits.
    pub fn limits(&self) -> sluice_api::ApiLimits {
        sluice_api::ApiLimits {
            max_body_bytes: self.max_body_bytes,
            max_records: self.max_records_per_request,
            max_json_depth: self.max_json_depth,
            body_timeout: self.body_timeout,
        }
    }

    /// The connection limits, under an open-file limit of `open_files`.
    pub fn connection_limits(&self, open_files: u64) -> sluice_api::ServerLimits {
        sluice_api::ServerLimits {
            header_timeout: self.header_timeout,
            max_connections: match self.max_connections {
                0 => sluice_api::ServerLimits::for_open_files(open_files),
                n => n,
            },
            max_connections_per_address: self.max_connections_per_address,
            drain: self.drain_timeout,
        }
    }
}

/// `[plugins]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Directory of plugin files (default: DATA_DIR/plugins, or `--plugins-dir`).
    pub dir: Option<PathBuf>,
    /// Memory cap per plugin instance, MiB.
    pub max_memory_mib: usize,
    /// Memory cap of all plugin instances together, MiB.
    pub max_total_memory_mib: usize,
    /// `split` calls one source may run at once for the API (0: half the cores, at least one).
    pub max_concurrent_calls_per_source: usize,
    /// Deadline per plugin call, milliseconds.
    pub call_timeout_ms: u64,
    /// Most output per call, MiB.
    pub max_output_mib: usize,
    /// Largest `.wasm` loaded, MiB.
    pub max_wasm_mib: u64,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        let d = sluice_runtime::SandboxConfig::default();
        Self {
            dir: None,
            max_memory_mib: d.max_memory_bytes >> 20,
            max_total_memory_mib: d.max_total_memory_bytes >> 20,
            max_concurrent_calls_per_source: 0,
            call_timeout_ms: d.call_timeout.as_millis() as u64,
            max_output_mib: d.max_output_bytes >> 20,
            max_wasm_mib: d.max_wasm_bytes >> 20,
        }
    }
}

impl PluginsConfig {
    /// The sandbox limits these settings describe.
    pub fn sandbox(&self) -> sluice_runtime::SandboxConfig {
        sluice_runtime::SandboxConfig {
            max_memory_bytes: self.max_memory_mib << 20,
            max_total_memory_bytes: self.max_total_memory_mib << 20,
            max_concurrent_calls_per_source: match self.max_concurrent_calls_per_source {
                0 => sluice_runtime::SandboxConfig::default().max_concurrent_calls_per_source,
                n => n,
            },
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            max_output_bytes: self.max_output_mib << 20,
            max_wasm_bytes: self.max_wasm_mib << 20,
            ..sluice_runtime::SandboxConfig::default()
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Window over which failed logins are counted, seconds.
    pub failure_window_secs: u64,
    /// Failed logins per user within the window before 429.
    pub max_failures_per_user: usize,
    /// Failed logins per client address within the window before 429.
    pub max_failures_per_client: usize,
    /// Consecutive failed logins that lock a user.
    pub lock_after: u32,
    /// How long a lock lasts, seconds.
    pub lock_secs: u64,
    /// How long a successful verification is cached, seconds.
    pub cache_secs: u64,
    /// How long credentials that verified skip the failure limits, seconds (a client behind
    /// the same address as an attacker keeps logging in).
    pub trust_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let p = sluice_auth::AuthPolicy::default();
        Self {
            failure_window_secs: p.failure_window.as_secs(),
            max_failures_per_user: p.max_failures_per_user,
            max_failures_per_client: p.max_failures_per_client,
            lock_after: p.lock_after,
            lock_secs: p.lock_for.as_secs(),
            cache_secs: p.cache_for.as_secs(),
            trust_secs: p.trust_for.as_secs(),
        }
    }
}

impl AuthConfig {
    /// The policy these settings describe.
    pub fn policy(&self) -> sluice_auth::AuthPolicy {
        sluice_auth::AuthPolicy {
            failure_window: Duration::from_secs(self.failure_window_secs),
            max_failures_per_user: self.max_failures_per_user,
            max_failures_per_client: self.max_failures_per_client,
            lock_after: self.lock_after,
            lock_for: Duration::from_secs(self.lock_secs),
            cache_for: Duration::from_secs(self.cache_secs),
            trust_for: Duration::from_secs(self.trust_secs),
        }
    }
}

/// Which log holds accepted records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// The embedded SQLite spool in the data directory.
    #[default]
    Spool,
    /// Apache Kafka (`[log.kafka]`).
    Kafka,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `spool` (embedded, default) or `kafka`.
    pub kind: LogKind,
    /// Partitions per source (spool), or of each raw topic sluice creates (Kafka).
    pub partitions: u32,
    /// How long the answer to a request sent with an `Idempotency-Key` is remembered, seconds
    /// (default a day): a retry within it gets the original answer and stores nothing.
    pub idempotency_window_secs: u64,
    /// How long the embedded spool keeps a record after the stream has committed it to the
    /// warehouse (a duration: `"24h"`, `"30m"`; `"0s"` trims at once). Kafka keeps its topics'
    /// own retention.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Free space, in MiB, kept on the data directory's file system: below it the API answers
    /// 507 (and /readyz 503) so that the stream always has room to commit and trim (0: no floor).
    pub min_free_mib: u64,
    /// `[log.kafka]`
    pub kafka: KafkaSettings,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            kind: LogKind::Spool,
            partitions: 4,
            idempotency_window_secs: sluice_log::DEFAULT_IDEMPOTENCY_WINDOW.as_secs(),
            retention: sluice_log::DEFAULT_RETENTION,
            min_free_mib: 256,
            kafka: KafkaSettings::default(),
        }
    }
}

/// `[log.kafka]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Prefix of topic names: `<prefix><source>` and `<prefix><source>.dlq`.
    pub topic_prefix: String,
    /// Replication factor of topics sluice creates.
    pub replication: i16,
    /// Transactional id of the producer: unique per sluice instance on a cluster.
    pub transactional_id: String,
    /// Prefix of consumer group names.
    pub group_prefix: String,
    /// How long an append waits for the brokers before the API answers 503, milliseconds.
    pub append_timeout_ms: u64,
    /// How long a single-message append waits for others to share its Kafka request,
    /// milliseconds (0: send at once).
    pub linger_ms: u64,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        let d = sluice_kafka::KafkaConfig::new("127.0.0.1:9092");
        Self {
            brokers: d.brokers,
            topic_prefix: d.topic_prefix,
            replication: d.replication,
            transactional_id: d.transactional_id,
            group_prefix: d.group_prefix,
            append_timeout_ms: d.append_timeout.as_millis() as u64,
            linger_ms: d.linger.as_millis() as u64,
        }
    }
}

impl LogConfig {
    /// How long idempotency answers are remembered.
    pub fn idempotency_window(&self) -> Duration {
        Duration::from_secs(self.idempotency_window_secs)
    }

    /// The Kafka log's settings; its index of idempotency answers at `idempotency_index`.
    pub fn kafka(&self, idempotency_index: Option<PathBuf>) -> sluice_kafka::KafkaConfig {
        sluice_kafka::KafkaConfig {
            idempotency_window: self.idempotency_window(),
            idempotency_index,
            brokers: self.kafka.brokers.clone(),
            topic_prefix: self.kafka.topic_prefix.clone(),
            partitions: self.partitions,
            replication: self.kafka.replication,
            transactional_id: self.kafka.transactional_id.clone(),
            append_timeout: Duration::from_millis(self.kafka.append_timeout_ms),
            group_prefix: self.kafka.group_prefix.clone(),
            linger: Duration::from_millis(self.kafka.linger_ms),
        }
    }
}

/// `[warehouse]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseSettings {
    /// `hdfs://namenode:port/dir` or `file:///dir`; empty: `DATA_DIR/warehouse`.
    pub url: String,
    /// `zstd` or `snappy`.
    pub compression: String,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// A local warehouse's files are created group-readable (0640, directories 0750) for
    /// Trino's readers, instead of private (0600/0700). The data directory stays 0700.
    pub group_readable: bool,
    /// `[warehouse.tables.NAME]`: per-table layout.
    pub tables: BTreeMap<String, TableSettings>,
}

impl Default for WarehouseSettings {
    fn default() -> Self {
        let d = sluice_warehouse::EncodeOptions::default();
        Self {
            url: String::new(),
            compression: "zstd".into(),
            row_group_rows: d.row_group_rows,
            group_readable: false,
            tables: BTreeMap::new(),
        }
    }
}

/// `[warehouse.tables.NAME]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSettings {
    /// A date or timestamp column: partition by its date (`event_date=...`) instead of the
    /// ingest date.
    pub partition_by: String,
}

impl WarehouseSettings {
    /// The warehouse URL, with the default for `data_dir`.
    pub fn url(&self, data_dir: &Path) -> anyhow::Result<String> {
        if !self.url.is_empty() {
            return Ok(self.url.clone());
        }
        let dir = std::path::absolute(data_dir.join("warehouse"))
            .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
        Ok(format!("file://{}", dir.display()))
    }

    /// Layout and encoding.
    pub fn config(&self) -> anyhow::Result<sluice_warehouse::WarehouseConfig> {
        let compression = self
            .compression
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid configuration: warehouse.compression: {e}"))?;
        let partitioning = self
            .tables
            .iter()
            .map(|(table, t)| {
                (
                    table.clone(),
                    sluice_warehouse::PartitionSpec { key: "event_date".into(), column: t.partition_by.clone() },
                )
            })
            .collect();
        Ok(sluice_warehouse::WarehouseConfig {
            encode: sluice_warehouse::EncodeOptions { compression, row_group_rows: self.row_group_rows },
            partitioning,
        })
    }
}

/// `[catalog]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogSettings {
    /// Trino coordinator, e.g. `http://trino:8080`; empty: sluice does not touch the catalog.
    pub trino_url: String,
    /// Trino user sluice runs catalog statements as.
    pub user: String,
    /// Trino catalog of the Hive connector.
    pub catalog: String,
    /// Schema the tables go to.
    pub schema: String,
    /// How often tables of newly loaded plugins are looked for, seconds.
    pub rescan_secs: u64,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            trino_url: String::new(),
            user: "sluice".into(),
            catalog: "hive".into(),
            schema: "sluice".into(),
            rescan_secs: 30,
        }
    }
}

/// `[stream]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// Records per plugin call.
    pub batch_records: usize,
    /// Commit a log partition's files at this many rows...
    pub roll_records: usize,
    /// ... or this much memory (MiB)...
    pub roll_mib: usize,
    /// ... or when the oldest row has waited this long, milliseconds.
    pub roll_ms: u64,
    /// Most memory (MiB) the open files of all sources hold together before they are committed.
    pub memory_mib: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        let d = sluice_stream::StreamConfig::default();
        Self {
            batch_records: d.batch_records,
            roll_records: d.roll_records,
            roll_mib: d.roll_bytes >> 20,
            roll_ms: d.roll_interval.as_millis() as u64,
            memory_mib: d.memory_budget >> 20,
        }
    }
}

impl StreamSettings {
    /// The stream core's settings.
    pub fn config(&self) -> anyhow::Result<sluice_stream::StreamConfig> {
        anyhow::ensure!(self.roll_ms > 0, "invalid configuration: stream.roll_ms must be at least 1");
        anyhow::ensure!(self.batch_records > 0, "invalid configuration: stream.batch_records must be at least 1");
        Ok(sluice_stream::StreamConfig {
            batch_records: self.batch_records,
            roll_records: self.roll_records.max(1),
            roll_bytes: (self.roll_mib << 20).max(1),
            roll_interval: Duration::from_millis(self.roll_ms),
            memory_budget: (self.memory_mib << 20).max(1),
        })
    }
}

/// `[sources.NAME]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The plugin the source runs.
    pub plugin: String,
    /// The plugin's settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

impl Config {
    /// Defaults, then the file (if any), then `SLUICE__*` environment variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(file.is_file(), "config file {} does not exist", file.display());
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("SLUICE__").split("__"));
        let config: Config = figment.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.listen_address()?;
        self.warehouse.config()?;
        self.stream.config()?;
        anyhow::ensure!(
            self.server.tls_cert.is_some() == self.server.tls_key.is_some(),
            "invalid configuration: server.tls_cert and server.tls_key must be set together"
        );
        for name in self.sources.keys() {
            anyhow::ensure!(
                sluice_auth::is_valid_name(name),
                "invalid configuration: source name `{name}` is not valid"
            );
        }
        Ok(())
    }

    /// `server.listen` parsed.
    pub fn listen_address(&self) -> anyhow::Result<SocketAddr> {
        self.server.listen.parse().with_context(|| {
            format!("invalid configuration: server.listen `{}` is not ADDRESS:PORT", self.server.listen)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)]
    fn files_and_environment_override_defaults_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sluice.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"0.0.0.0:9000\"\n[sources.hospital-b]\nplugin = \"patients\"\nsettings = { drop-unknown = \"true\" }\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            let config = Config::load(Some(&file)).unwrap();
            assert_eq!(config.server.listen, "0.0.0.0:9000");
            assert_eq!(config.sources["hospital-b"].settings["drop-unknown"], "true");
            jail.set_env("SLUICE__SERVER__MAX_JSON_DEPTH", "12");
            jail.set_env("SLUICE__PLUGINS__CALL_TIMEOUT_MS", "250");
            let config = Config::load(Some(&file)).unwrap();
            assert_eq!(config.server.max_json_depth, 12);
            assert_eq!(config.plugins.sandbox().call_timeout, Duration::from_millis(250));
            assert_eq!(config.log.retention, sluice_log::DEFAULT_RETENTION);
            jail.set_env("SLUICE__LOG__RETENTION", "0s");
            assert_eq!(Config::load(Some(&file)).unwrap().log.retention, Duration::ZERO);
            jail.set_env("SLUICE__LOG__RETENTION", "24h");
            assert_eq!(Config::load(Some(&file)).unwrap().log.retention, Duration::from_secs(86_400));
            jail.set_env("SLUICE__LOG__RETENTION", "a day");
            let error = Config::load(Some(&file)).unwrap_err().to_string();
            assert!(
                error.contains(r#"invalid value string "a day", expected a duration for key "LOG.RETENTION""#),
                "{error}"
            );
            jail.set_env("SLUICE__LOG__RETENTION", "1h");
            jail.set_env("SLUICE__SERVER__LISTN", "x");
            let error = Config::load(Some(&file)).unwrap_err().to_string();
            assert!(error.contains("unknown field: found `listn`"), "{error}");
            Ok(())
        });
        std::fs::write(&file, "[server]\nlisten = \"nowhere\"\n").unwrap();
        let error = Config::load(Some(&file)).unwrap_err().to_string();
        assert_eq!(error, "invalid configuration: server.listen `nowhere` is not ADDRESS:PORT");
    }
}

#[cfg(test)]
mod documented {
    use super::*;

    /// The `## Keys` block of docs/configuration.md: every line up to the example of an extra
    /// source (not a default).
    fn documented_block() -> &'static str {
        let doc = include_str!("../../../docs/configuration.md");
        let block = doc.split("## Keys").nth(1).and_then(|keys| keys.split("```toml").nth(1)).expect("a toml block");
        let block = block.split("```").next().expect("a closed block");
        block.split("\n# More sources").next().expect("the defaults")
    }

    /// Keys (`section.key`, `log.kafka.key`) of `value`, with whether each is an empty table.
    fn keys(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, bool)>) {
        let serde_json::Value::Object(map) = value else { return };
        for (key, value) in map {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                serde_json::Value::Object(inner) if !inner.is_empty() => keys(&path, value, out),
                serde_json::Value::Object(_) => out.push((path, true)),
                _ => out.push((path, false)),
            }
        }
    }

    /// Every key the block names, commented out or not, as `section.key`; tables named only in a
    /// header (`# [warehouse.tables.admissions]`) as their path.
    fn named(block: &str) -> Vec<String> {
        let mut section = String::new();
        let mut names = Vec::new();
        for line in block.lines() {
            let line = line.trim_start_matches('#').trim();
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
                section = header.to_string();
                names.push(section.clone());
            } else if let Some((key, _)) = line.split_once('=') {
                let key = key.trim();
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    names.push(format!("{section}.{key}"));
                }
            }
        }
        names
    }

    #[test]
    fn the_documented_keys_are_the_defaults_and_every_key_is_documented() {
        let block = documented_block();
        let documented: Config = Figment::from(Toml::string(block))
            .extract()
            .unwrap_or_else(|e| panic!("docs/configuration.md names keys sluice refuses: {e}"));
        assert_eq!(documented, Config::default(), "docs/configuration.md shows values that are not the defaults");
        let mut all = Vec::new();
        keys("", &serde_json::to_value(Config::default()).unwrap(), &mut all);
        let names = named(block);
        let missing: Vec<&str> = all
            .iter()
            .filter(|(path, empty_table)| {
                !names.iter().any(|n| n == path || (*empty_table && n.starts_with(&format!("{path}."))))
            })
            .map(|(path, _)| path.as_str())
            .filter(|path| *path != "sources")
            .collect();
        assert!(missing.is_empty(), "keys missing from docs/configuration.md: {missing:?}");
    }
}
