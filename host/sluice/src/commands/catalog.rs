//! `sluice catalog ddl`, and the catalog tables of the loaded plugins.

use std::collections::BTreeMap;

use sluice_catalog::{TableDef, ddl};
use sluice_runtime::SourceTable;

use crate::cli::{CatalogCommand, Dialect};
use crate::commands::plugin::loaded;
use crate::config::Config;
use crate::paths::Paths;

/// Every table the sources' plugins write, as the catalog sees it.
pub fn tables(sources: &SourceTable, config: &Config, warehouse_url: &str) -> Vec<TableDef> {
    let warehouse = config.warehouse.config().unwrap_or_default();
    let mut tables = BTreeMap::new();
    for name in sources.names() {
        let Some(plugin) = sources.get(&name).and_then(|s| s.plugin().ok()) else { continue };
        for table in &plugin.manifest().tables {
            let partition_key = warehouse.partitioning.get(&table.name).map_or("ingest_date", |p| p.key.as_str());
            tables.entry(table.name.clone()).or_insert_with(|| TableDef {
                name: table.name.clone(),
                schema: sluice_stream::table_schema(table),
                location: format!("{}/{}", warehouse_url.trim_end_matches('/'), table.name),
                partition_key: partition_key.to_string(),
            });
        }
    }
    tables.into_values().collect()
}

/// Runs a `catalog` command.
pub fn run(paths: &Paths, command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Ddl { config, dialect } => {
            let config = Config::load(config.as_deref())?;
            let registry = loaded(paths)?;
            let sources = SourceTable::new(registry, crate::commands::serve::bindings(&config))?;
            let warehouse_url = config.warehouse.url(paths.data_dir())?;
            let (catalog, schema) = (&config.catalog.catalog, &config.catalog.schema);
            let mut out = Vec::new();
            match dialect {
                Dialect::Trino => out.push(ddl::trino_schema(catalog, schema, &warehouse_url)),
                Dialect::Hive => out.push(ddl::hive_database(schema, &warehouse_url)),
            }
            for table in tables(&sources, &config, &warehouse_url) {
                out.push(match dialect {
                    Dialect::Trino => format!(
                        "{};\nCALL {}.system.sync_partition_metadata({}, {}, 'ADD')",
                        ddl::trino_table(catalog, schema, &table)?,
                        ddl::quote(catalog),
                        ddl::literal(schema),
                        ddl::literal(&table.name)
                    ),
                    Dialect::Hive => ddl::hive_table(schema, &table)?,
                });
            }
            println!("{};", out.join(";\n\n"));
            Ok(())
        }
    }
}
