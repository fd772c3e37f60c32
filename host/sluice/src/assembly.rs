//! Building sluice from its configuration, in one order for every command: engine → registry →
//! sources → log → warehouse → stream → catalog. `serve` runs every stage; `dlq`, `catalog ddl`
//! and `plugin` run the stages they need, built the same way, so that a setting means the same
//! thing to all of them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_catalog::{CatalogSync, TableDef, TrinoClient};
use sluice_kafka::KafkaLog;
use sluice_log::{LogKind, SqliteSpool, StreamLog};
use sluice_runtime::{PluginEngine, PluginRegistry, SourceTable};
use sluice_stream::StreamCore;
use sluice_warehouse::Warehouse;

use crate::config::Config;
use crate::paths::Paths;

/// A configuration and the data directory it applies to.
pub struct Assembly<'a> {
    paths: &'a Paths,
    config: Config,
}

impl<'a> Assembly<'a> {
    /// The stages of `config` under `paths`.
    pub fn new(paths: &'a Paths, config: Config) -> Self {
        Self { paths, config }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where plugin files are looked for: `--plugins-dir`, else `plugins.dir`, else
    /// `DATA_DIR/plugins`.
    pub fn plugins_dir(&self) -> PathBuf {
        match (self.paths.plugins_dir_flag(), &self.config.plugins.dir) {
            (Some(flag), _) => flag.to_path_buf(),
            (None, Some(configured)) => configured.clone(),
            (None, None) => self.paths.data_dir().join("plugins"),
        }
    }

    /// The engine, under `[plugins]`' limits. Compiled plugins are cached in the data directory
    /// only once it exists, so that read-only commands create nothing.
    pub fn engine(&self) -> anyhow::Result<PluginEngine> {
        let cache = self.paths.data_dir_exists().then(|| self.paths.compile_cache());
        Ok(PluginEngine::new(self.config.plugins.clone(), cache)?)
    }

    /// The bundled plugins plus those in the plugin directory, if it exists (read-only commands
    /// create nothing). Files that fail to load are reported.
    pub fn registry(&self, engine: &PluginEngine) -> anyhow::Result<PluginRegistry> {
        let dir = self.plugins_dir();
        self.open_registry(engine, dir.is_dir().then_some(dir.as_path()))
    }

    /// The registry `serve` runs: the plugin directory is created when missing and watched, so
    /// that a plugin dropped into it loads without a restart.
    pub fn watched_registry(&self, engine: &PluginEngine) -> anyhow::Result<PluginRegistry> {
        let registry = self.open_registry(engine, Some(&self.plugins_dir()))?;
        registry.watch()?;
        Ok(registry)
    }

    fn open_registry(&self, engine: &PluginEngine, dir: Option<&std::path::Path>) -> anyhow::Result<PluginRegistry> {
        let registry = PluginRegistry::open(engine, dir, sluice_plugin_artifacts::BUNDLED)?;
        for (path, reason) in registry.failures() {
            tracing::warn!(path = %path.display(), %reason, "plugin not loaded");
            eprintln!("warning: {} not loaded: {reason}", path.display());
        }
        Ok(registry)
    }

    /// The sources: one per plugin, plus `[sources]`, each checked now.
    pub fn sources(&self, registry: PluginRegistry) -> anyhow::Result<SourceTable> {
        SourceTable::new(registry, self.config.sources.clone()).context("invalid [sources] configuration")
    }

    /// Engine, registry and sources at once, for the commands that only read plugins.
    pub fn loaded_sources(&self) -> anyhow::Result<SourceTable> {
        self.sources(self.registry(&self.engine()?)?)
    }

    /// The log as [`log`](Self::log) opens it, for an admin command: a data directory without
    /// a spool is an error (a mistyped `--data-dir`), not a new, empty log.
    pub async fn existing_log(&self) -> anyhow::Result<Arc<dyn StreamLog>> {
        let path = self.paths.spool();
        if matches!(self.config.log.kind, LogKind::Spool) && !path.exists() {
            anyhow::bail!(
                "there is no spool at {}: pass the --data-dir of the `sluice serve` whose log to read",
                path.display()
            );
        }
        self.log().await
    }

    /// The log `log.kind` names: the embedded spool, or Kafka.
    pub async fn log(&self) -> anyhow::Result<Arc<dyn StreamLog>> {
        let log = &self.config.log;
        Ok(match log.kind {
            LogKind::Spool => {
                let path = self.paths.spool();
                let spool = SqliteSpool::open(log.spool(&path))
                    .with_context(|| format!("cannot open the spool {}", path.display()))?;
                Arc::new(spool)
            }
            LogKind::Kafka => {
                let index = self.paths.data_dir().join("kafka-idempotency.db");
                let mut kafka = self.config.kafka.clone().with_log(log, Some(index));
                if kafka.transactional_id == sluice_kafka::KafkaConfig::default().transactional_id {
                    kafka.transactional_id = self.instance_id();
                }
                // A shared auth store means other instances may share these topics.
                kafka.shared = !self.config.auth.url.expose().is_empty();
                Arc::new(KafkaLog::connect(kafka).await?)
            }
        })
    }

    /// What `serve`'s lock covers: the whole data directory with the embedded log, the lock
    /// file alone with Kafka.
    pub fn serve_lock_scope(&self) -> crate::data_lock::Scope {
        match self.config.log.kind {
            LogKind::Spool => crate::data_lock::Scope::Directory,
            LogKind::Kafka => crate::data_lock::Scope::File,
        }
    }

    /// The lock file `serve` holds in the data directory: one server per embedded log; with
    /// Kafka, one per instance id (replicas that share a volume have their own host names).
    pub fn serve_lock_name(&self) -> String {
        match self.config.log.kind {
            LogKind::Spool => "serve.lock".into(),
            LogKind::Kafka => {
                let configured = &self.config.kafka.transactional_id;
                let id = if *configured == sluice_kafka::KafkaConfig::default().transactional_id {
                    self.instance_id()
                } else {
                    configured.clone()
                };
                format!("serve-{id}.lock")
            }
        }
    }

    /// This instance's name among the instances sharing a cluster, unless configured
    /// (`kafka.transactional_id`): `sluice-<host name>-<8 hex digits of the data directory's
    /// path>`, the same at every start, different for another machine or data directory.
    pub fn instance_id(&self) -> String {
        use sha2::Digest;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let host: String =
            host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        let dir = std::fs::canonicalize(self.paths.data_dir()).unwrap_or_else(|_| self.paths.data_dir().to_path_buf());
        let digest = sha2::Sha256::digest(dir.to_string_lossy().as_bytes());
        format!("sluice-{host}-{}", hex::encode(&digest[..4]))
    }

    /// The warehouse URL: `warehouse.url`, or `DATA_DIR/warehouse`.
    pub fn warehouse_url(&self) -> anyhow::Result<String> {
        if !self.config.warehouse.url.is_empty() {
            return Ok(self.config.warehouse.url.clone());
        }
        let data_dir = self.paths.data_dir();
        let dir = std::path::absolute(data_dir.join("warehouse"))
            .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
        Ok(format!("file://{}", dir.display()))
    }

    /// The warehouse.
    pub fn warehouse(&self) -> anyhow::Result<Warehouse> {
        Ok(Warehouse::open(&self.warehouse_url()?, self.config.warehouse.clone())?)
    }

    /// Starts the stream from `log` to `warehouse` through `sources`' plugins, keeping what it
    /// learns of table schemas in `schemas` (which plugin admission reads).
    pub fn start_stream(
        &self,
        log: Arc<dyn StreamLog>,
        warehouse: Warehouse,
        sources: SourceTable,
        schemas: sluice_stream::TableSchemas,
    ) -> StreamCore {
        StreamCore::start_sharing(log, warehouse, sources, self.config.stream.clone(), schemas)
    }

    /// Starts keeping Trino's catalog in step with what `stream` commits, if `[catalog]` names
    /// a Trino.
    ///
    /// On the shared auth store (several instances), only the instance holding the catalog's
    /// leadership runs it (the others wait to take over): DDL happens once per change, not
    /// once per instance, and the leader syncs every table's partitions every
    /// [`SHARED_PARTITION_SYNC`], since the other instances' commits make partitions too.
    pub fn start_catalog(
        &self,
        sources: &SourceTable,
        warehouse: Warehouse,
        stream: &StreamCore,
        auth: Arc<sluice_auth::AuthStore>,
    ) -> anyhow::Result<()> {
        let settings = self.config.catalog.clone();
        if !settings.enabled() {
            return Ok(());
        }
        let url = self.warehouse_url()?;
        let (sources, layout) = (sources.clone(), self.config.warehouse.clone());
        let rescan = settings.rescan;
        let sync = move || {
            let client = TrinoClient::new(&settings.trino_url, &settings.user);
            let sync =
                CatalogSync::new(client, &settings.catalog, &settings.schema, &url).with_warehouse(warehouse.clone());
            let (sources, layout, url) = (sources.clone(), layout.clone(), url.clone());
            (sync, move || tables(&sources, &layout, &url))
        };
        if !auth.is_shared() {
            let (sync, tables) = sync();
            tokio::spawn(sync.run(tables, stream.commits(), rescan, None));
            return Ok(());
        }
        let commits = stream.commits();
        tokio::spawn(async move {
            let mut commits = commits;
            loop {
                let store = auth.clone();
                match tokio::task::spawn_blocking(move || store.try_lead("catalog")).await {
                    Ok(Ok(Some(leader))) => {
                        tracing::info!("this instance keeps the catalog in step");
                        let leader = Arc::new(leader);
                        let (sync, tables) = sync();
                        let running =
                            tokio::spawn(sync.run(tables, commits.resubscribe(), rescan, Some(SHARED_PARTITION_SYNC)));
                        loop {
                            tokio::time::sleep(rescan.min(Duration::from_secs(5))).await;
                            let held = leader.clone();
                            if !tokio::task::spawn_blocking(move || held.holds()).await.unwrap_or(false) {
                                tracing::warn!("lost the catalog's leadership; another instance takes over");
                                running.abort();
                                break;
                            }
                        }
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "cannot ask for the catalog's leadership; retrying"),
                    Err(error) => tracing::warn!(%error, "the leadership task failed; retrying"),
                }
                // Drop what was announced meanwhile: the leader syncs every table anyway.
                commits = commits.resubscribe();
                tokio::time::sleep(rescan.min(Duration::from_secs(5))).await;
            }
        });
        Ok(())
    }

    /// Every table the sources' plugins write, as the catalog sees it.
    pub fn tables(&self, sources: &SourceTable) -> anyhow::Result<Vec<TableDef>> {
        Ok(tables(sources, &self.config.warehouse, &self.warehouse_url()?))
    }
}

/// How often the catalog's leader syncs every table's partitions when several instances share
/// the work.
pub const SHARED_PARTITION_SYNC: Duration = Duration::from_secs(5);

/// Every table the sources' plugins write, defined by [`sluice_stream::table_definition`].
fn tables(sources: &SourceTable, warehouse: &sluice_warehouse::WarehouseConfig, url: &str) -> Vec<TableDef> {
    let mut tables = BTreeMap::new();
    for name in sources.names() {
        let Some(plugin) = sources.get(&name).and_then(|s| s.plugin().ok()) else { continue };
        for table in &plugin.manifest().tables {
            tables.entry(table.name.clone()).or_insert_with(|| sluice_stream::table_definition(table, warehouse, url));
        }
    }
    tables.into_values().collect()
}
