//! The configuration file (TOML) and its environment overrides.
//!
//! Every key can be set in the file or overridden by an environment variable named
//! `SLUICE__<SECTION>__<KEY>`, e.g. `SLUICE__SERVER__LISTEN=0.0.0.0:8080`. Unknown keys are an
//! error, in the file and in the environment alike.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sluice_api::{MllpConfig, ServerConfig};
use sluice_auth::AuthPolicy;
use sluice_catalog::CatalogConfig;
use sluice_kafka::KafkaConfig;
use sluice_log::LogConfig;
use sluice_runtime::{SandboxConfig, SourceBinding};
use sluice_stream::StreamConfig;
use sluice_warehouse::WarehouseConfig;

/// Everything `sluice serve` can be told: one section per component, each owned (with its
/// defaults and documentation) by the component's crate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: the HTTP server (sluice-api).
    pub server: ServerConfig,
    /// `[plugins]`: plugin loading and sandbox limits (sluice-runtime).
    pub plugins: SandboxConfig,
    /// `[auth]`: login failure limits and verification caching (sluice-auth).
    pub auth: AuthPolicy,
    /// `[log]`: which log, and what every backend shares (sluice-log).
    pub log: LogConfig,
    /// `[kafka]`: the Kafka log (sluice-kafka).
    pub kafka: KafkaConfig,
    /// `[warehouse]`: tables, layout and encoding (sluice-warehouse).
    pub warehouse: WarehouseConfig,
    /// `[stream]`: batching and file rolls (sluice-stream).
    pub stream: StreamConfig,
    /// `[catalog]`: Trino (sluice-catalog).
    pub catalog: CatalogConfig,
    /// `[sources.NAME]`: sources beyond the default one per plugin (sluice-runtime).
    pub sources: BTreeMap<String, SourceBinding>,
    /// `[[mllp]]`: HL7 v2 listeners, one source each (sluice-api).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mllp: Vec<MllpConfig>,
}

/// Keys of sluice 0.1's first configuration format, and what replaced each: a file or an
/// environment that still names one gets this instead of a bare "unknown field".
const RENAMED: &[(&str, &str)] = &[
    ("server.max_body_bytes", "server.max_body, a size such as \"8 MiB\""),
    ("plugins.max_memory_mib", "plugins.max_memory, a size such as \"256 MiB\""),
    ("plugins.max_total_memory_mib", "plugins.max_total_memory, a size such as \"1 GiB\""),
    ("plugins.call_timeout_ms", "plugins.call_timeout, a duration such as \"10s\""),
    ("plugins.max_output_mib", "plugins.max_output, a size such as \"128 MiB\""),
    ("plugins.max_wasm_mib", "plugins.max_wasm, a size such as \"64 MiB\""),
    ("auth.failure_window_secs", "auth.failure_window, a duration such as \"60s\""),
    ("auth.lock_secs", "auth.lock_for, a duration such as \"15m\""),
    ("auth.cache_secs", "auth.cache_for, a duration such as \"60s\""),
    ("auth.trust_secs", "auth.trust_for, a duration such as \"24h\""),
    ("log.idempotency_window_secs", "log.idempotency_window, a duration such as \"24h\""),
    ("log.min_free_mib", "log.min_free, a size such as \"256 MiB\""),
    ("log.kafka", "the section [kafka] (environment: SLUICE__KAFKA__*)"),
    ("stream.roll_mib", "stream.roll_size, a size such as \"64 MiB\""),
    ("stream.roll_ms", "stream.roll_interval, a duration such as \"30s\""),
    ("stream.memory_mib", "stream.memory_budget, a size such as \"16 MiB\""),
    ("catalog.rescan_secs", "catalog.rescan, a duration such as \"30s\""),
];

impl Config {
    /// Defaults, then the file (if any), then `SLUICE__*` environment variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(file.is_file(), "config file {} does not exist", file.display());
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("SLUICE__").split("__"));
        if let Some((old, new)) = RENAMED.iter().find(|(old, _)| figment.find_value(old).is_ok()) {
            anyhow::bail!("invalid configuration: `{old}` is now {new} (docs/configuration.md)");
        }
        let config: Config = figment.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.check().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(config)
    }

    /// What the types cannot say: each component's own checks (a value that would refuse every
    /// request, turn a protection off unseen, or stop a component), and valid source names.
    fn check(&self) -> anyhow::Result<()> {
        self.server.check()?;
        self.plugins.check()?;
        self.auth.check()?;
        self.log.check()?;
        if self.log.kind == sluice_log::LogKind::Kafka {
            self.kafka.check()?;
        }
        self.warehouse.check()?;
        self.stream.check()?;
        self.catalog.check()?;
        for name in self.sources.keys() {
            anyhow::ensure!(sluice_auth::is_valid_name(name), "source name `{name}` is not valid");
        }
        for listener in &self.mllp {
            listener.listen_address()?;
        }
        Ok(())
    }

    /// `server.listen` parsed.
    pub fn listen_address(&self) -> anyhow::Result<SocketAddr> {
        self.server.listen_address().context("invalid configuration")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
            jail.set_env("SLUICE__PLUGINS__CALL_TIMEOUT", "250ms");
            jail.set_env("SLUICE__PLUGINS__MAX_MEMORY", "64 MiB");
            let config = Config::load(Some(&file)).unwrap();
            assert_eq!(config.server.max_json_depth, 12);
            assert_eq!(config.plugins.call_timeout, Duration::from_millis(250));
            assert_eq!(config.plugins.max_memory.as_u64(), 64 << 20);
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
            // A key of the first format names its replacement.
            jail.set_env("SLUICE__SERVER__LISTN", "");
            jail.set_env("SLUICE__STREAM__ROLL_MS", "250");
            let error = Config::load(Some(&file)).unwrap_err().to_string();
            assert_eq!(
                error,
                "invalid configuration: `stream.roll_ms` is now stream.roll_interval, a duration such as \"30s\" (docs/configuration.md)"
            );
            Ok(())
        });
        std::fs::write(&file, "[server]\nlisten = \"nowhere\"\n").unwrap();
        let error = Config::load(Some(&file)).unwrap_err().to_string();
        assert_eq!(error, "invalid configuration: server.listen `nowhere` is not ADDRESS:PORT");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn values_that_would_refuse_everything_or_turn_a_protection_off_are_refused_naming_the_key() {
        let cases = [
            ("[server]\nmax_body = \"0 B\"", "server.max_body must be at least 1 KiB"),
            ("[server]\nmax_records_per_request = 0", "server.max_records_per_request must be at least 1"),
            ("[server]\nmax_json_depth = 1", "server.max_json_depth must be at least 2 (an array of records)"),
            ("[server]\nheader_timeout = \"0s\"", "server.header_timeout must be at least 1ms"),
            ("[server]\nmax_connections_per_address = 0", "server.max_connections_per_address must be at least 1"),
            (
                "[plugins]\ncall_timeout = \"0s\"",
                "plugins.call_timeout must be at least 10ms (the resolution of call deadlines)",
            ),
            ("[plugins]\nmax_memory = \"0 B\"", "plugins.max_memory must be at least 1 MiB"),
            (
                "[plugins]\nmax_total_memory = \"128 MiB\"",
                "plugins.max_total_memory must be at least plugins.max_memory",
            ),
            ("[plugins]\nmax_wasm = \"0 B\"", "plugins.max_wasm must be at least 1 KiB"),
            ("[auth]\nfailure_window = \"0s\"", "auth.failure_window must be at least 1s"),
            ("[auth]\nmax_failures_per_user = 0", "auth.max_failures_per_user must be at least 1"),
            ("[auth]\nlock_after = 0", "auth.lock_after must be at least 1"),
            ("[log]\npartitions = 0", "log.partitions must be from 1 to 1024"),
            ("[log]\npartitions = 100000", "log.partitions must be from 1 to 1024"),
            ("[log]\nidempotency_window = \"0s\"", "log.idempotency_window must be at least 1s"),
            (
                "[log]\nkind = \"kafka\"\n[kafka]\nreplication = 0",
                "kafka.replication must be at least 1, or -1 for the brokers' default",
            ),
            (
                "[log]\nkind = \"kafka\"\n[kafka]\ntopic_prefix = \"sluice/\"",
                "kafka.topic_prefix must be letters, digits, `.`, `_` and `-` (Kafka's topic names), at most 200 of them",
            ),
            ("[log]\nkind = \"kafka\"\n[kafka]\nbrokers = \" \"", "kafka.brokers must be at least one host:port"),
            ("[warehouse]\nrow_group_rows = 0", "warehouse.row_group_rows must be at least 1"),
            ("[catalog]\nrescan = \"0s\"", "catalog.rescan must be at least 1s"),
            (
                "[[mllp]]\nlisten = \"127.0.0.1:2575\"\nsource = \"hl7v2\"\nuser = \"ward7\"\nidle_timeout = \"0s\"",
                "mllp listener 127.0.0.1:2575: mllp.idle_timeout must be at least 1s",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sluice.toml");
        // In a jail: no other test's `SLUICE__*` variables meanwhile.
        figment::Jail::expect_with(|_| {
            for (toml, message) in cases {
                std::fs::write(&file, toml).unwrap();
                let error = Config::load(Some(&file)).expect_err(toml).to_string();
                assert_eq!(error, format!("invalid configuration: {message}"), "{toml}");
            }
            Ok(())
        });
        // Kafka's section is checked only when Kafka is the log; the edges of each rule pass.
        figment::Jail::expect_with(|_| {
            std::fs::write(
                &file,
                "[kafka]\nreplication = 0\n[log]\npartitions = 1024\nidempotency_window = \"1s\"\n[plugins]\ncall_timeout = \"10ms\"\n",
            )
            .unwrap();
            Config::load(Some(&file)).unwrap();
            Ok(())
        });
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
