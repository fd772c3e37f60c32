//! `sluice catalog ddl`: the statements that create the loaded plugins' tables.

use sluice_catalog::ddl;

use crate::assembly::Assembly;
use crate::cli::{CatalogCommand, Dialect};
use crate::config::Config;
use crate::paths::Paths;

/// Runs a `catalog` command.
pub fn run(paths: &Paths, command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Ddl { config, dialect } => {
            let assembly = Assembly::new(paths, Config::load(config.as_deref())?);
            let sources = assembly.loaded_sources()?;
            let warehouse_url = assembly.warehouse_url()?;
            let (catalog, schema) = (&assembly.config().catalog.catalog, &assembly.config().catalog.schema);
            let mut out = Vec::new();
            match dialect {
                Dialect::Trino => out.push(ddl::trino_schema(catalog, schema, &warehouse_url)),
                Dialect::Hive => out.push(ddl::hive_database(schema, &warehouse_url)),
            }
            for table in assembly.tables(&sources)? {
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
