//! Keeping Trino's catalog in step with the warehouse.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;

use crate::ddl::{self, TableDef, literal, quote, trino_type};
use crate::error::CatalogError;
use crate::trino::TrinoClient;

/// A partition directory the stream has just committed files to.
pub use sluice_warehouse::PartitionDir as NewPartition;

/// Creates the schema and tables in Trino, evolves them compatibly, registers partitions.
#[derive(Debug, Clone)]
pub struct CatalogSync {
    client: TrinoClient,
    catalog: String,
    schema: String,
    location: String,
    warehouse: Option<sluice_warehouse::Warehouse>,
}

impl CatalogSync {
    /// Tables go to `catalog.schema` in Trino; the schema's location is the warehouse root.
    pub fn new(client: TrinoClient, catalog: &str, schema: &str, location: &str) -> Self {
        Self { client, catalog: catalog.into(), schema: schema.into(), location: location.into(), warehouse: None }
    }

    /// Creates each table's directory in `warehouse` before the table (Trino refuses an
    /// external table over a missing directory).
    pub fn with_warehouse(mut self, warehouse: sluice_warehouse::Warehouse) -> Self {
        self.warehouse = Some(warehouse);
        self
    }

    /// The Trino client.
    pub fn client(&self) -> &TrinoClient {
        &self.client
    }

    /// Creates the schema if missing.
    pub async fn ensure_schema(&self) -> Result<(), CatalogError> {
        self.client.execute(&ddl::trino_schema(&self.catalog, &self.schema, &self.location)).await.map(drop)
    }

    /// Creates `table` if missing; adds the nullable columns a new plugin version added; refuses
    /// a change existing files cannot follow (a column removed, retyped or added as required).
    pub async fn ensure_table(&self, table: &TableDef) -> Result<(), CatalogError> {
        if let Some(warehouse) = &self.warehouse {
            warehouse.ensure_table_dir(&table.name).await.map_err(|e| CatalogError::Unreachable {
                url: sluice_config::without_password(&warehouse.storage().url),
                reason: e.to_string(),
            })?;
        }
        self.client.execute(&ddl::trino_table(&self.catalog, &self.schema, table)?).await?;
        let existing: HashMap<String, String> = self
            .client
            .execute(&format!(
                "SELECT column_name, data_type FROM {}.information_schema.columns WHERE table_schema = {} AND table_name = {}",
                quote(&self.catalog),
                literal(&self.schema),
                literal(&table.name)
            ))
            .await?
            .into_iter()
            .filter_map(|row| match (row.first(), row.get(1)) {
                (Some(Value::String(name)), Some(Value::String(kind))) => Some((name.clone(), kind.clone())),
                _ => None,
            })
            .collect();
        let incompatible = |reason: String| CatalogError::IncompatibleSchema { table: table.name.clone(), reason };
        let wanted: BTreeSet<&str> = table.schema.fields().iter().map(|f| f.name().as_str()).collect();
        for name in existing.keys() {
            if name != &table.partition_key && !wanted.contains(name.as_str()) {
                // Kept: older files hold it, newer ones read it as NULL (the stream refuses
                // versions that drop a required column).
                tracing::debug!(table = %table.name, column = %name, "column kept though the plugin no longer writes it");
            }
        }
        for field in table.schema.fields() {
            let kind = trino_type(field.name(), field.data_type())?;
            match existing.get(field.name()) {
                Some(old) if old == kind => {}
                Some(old) => {
                    return Err(incompatible(format!("column `{}` changed from {old} to {kind}", field.name())));
                }
                None if !field.is_nullable() => {
                    return Err(incompatible(format!("column `{}` was added as required (NOT NULL)", field.name())));
                }
                None => {
                    let alter = format!(
                        "ALTER TABLE {}.{}.{} ADD COLUMN {} {kind}",
                        quote(&self.catalog),
                        quote(&self.schema),
                        quote(&table.name),
                        quote(field.name())
                    );
                    self.client.execute(&alter).await?;
                    tracing::info!(table = %table.name, column = %field.name(), "column added to the catalog");
                }
            }
        }
        Ok(())
    }

    /// Registers every partition directory of `table` that Trino does not know yet.
    pub async fn sync_partitions(&self, table: &str) -> Result<(), CatalogError> {
        let call = format!(
            "CALL {}.system.sync_partition_metadata({}, {}, 'ADD')",
            quote(&self.catalog),
            literal(&self.schema),
            literal(table)
        );
        self.client.execute(&call).await.map(drop)
    }

    /// Keeps the catalog in step until `events` closes: at start (and every `rescan`, for new
    /// plugins) every table of `tables()` is ensured and its partitions synced; each new
    /// partition directory the stream reports is registered. With `sync_all`, every table's
    /// partitions are also synced that often (the partitions other instances' commits made,
    /// which this one hears nothing of). Failures are logged and retried.
    pub async fn run(
        self,
        tables: impl Fn() -> Vec<TableDef> + Send + 'static,
        mut events: tokio::sync::broadcast::Receiver<NewPartition>,
        rescan: Duration,
        sync_all: Option<Duration>,
    ) {
        let mut known: BTreeSet<NewPartition> = BTreeSet::new();
        let mut ready: BTreeSet<String> = BTreeSet::new();
        let mut pending: BTreeSet<String> = BTreeSet::new();
        let mut tick = tokio::time::interval(rescan);
        let mut all = tokio::time::interval(sync_all.unwrap_or(Duration::from_secs(3600)));
        loop {
            tokio::select! {
                _ = all.tick(), if sync_all.is_some() => pending.extend(ready.iter().cloned()),
                _ = tick.tick() => {
                    if let Err(error) = self.ensure_schema().await {
                        tracing::warn!(%error, "catalog schema not created; retrying");
                        continue;
                    }
                    for table in tables() {
                        match self.ensure_table(&table).await {
                            Ok(()) => {
                                if ready.insert(table.name.clone()) {
                                    pending.insert(table.name.clone());
                                }
                            }
                            Err(error @ CatalogError::IncompatibleSchema { .. }) => {
                                tracing::error!(%error, "catalog table left unchanged");
                            }
                            Err(error) => tracing::warn!(%error, "catalog table not ensured; retrying"),
                        }
                    }
                }
                event = events.recv() => match event {
                    Ok(partition) => {
                        if !known.contains(&partition) {
                            pending.insert(partition.table.clone());
                            known.insert(partition);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => pending.extend(ready.iter().cloned()),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
            let due: Vec<String> = pending.iter().filter(|t| ready.contains(*t)).cloned().collect();
            for table in due {
                match self.sync_partitions(&table).await {
                    Ok(()) => {
                        pending.remove(&table);
                    }
                    Err(error) => tracing::warn!(%table, %error, "partitions not registered; retrying"),
                }
            }
        }
    }
}
