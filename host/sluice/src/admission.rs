//! Whether a plugin's tables can be written beside what the warehouse holds: the check a server
//! makes before a plugin version replaces the one running, at start, and `sluice plugin check`.

use std::sync::Arc;

use sluice_warehouse::Warehouse;

/// Refuses a plugin version whose tables the warehouse's files, committed or open, cannot follow
/// (the check the stream makes before writing), so that the version running keeps running
/// instead of every record accepted after the swap going to the dead-letter queue.
pub fn schema_admission(
    warehouse: Warehouse,
    schemas: sluice_stream::TableSchemas,
    layout: sluice_warehouse::WarehouseConfig,
) -> sluice_runtime::Admission {
    let runtime = tokio::runtime::Handle::current();
    // The registry's watcher thread is not a runtime thread: it may wait here.
    Arc::new(move |plugin: &sluice_runtime::Plugin| runtime.block_on(admit(plugin, &warehouse, &schemas, &layout)))
}

/// Whether `plugin`'s tables can be written beside what the warehouse holds. A warehouse that
/// cannot be read admits the plugin: the stream's own check still holds.
pub async fn admit(
    plugin: &sluice_runtime::Plugin,
    warehouse: &Warehouse,
    schemas: &sluice_stream::TableSchemas,
    layout: &sluice_warehouse::WarehouseConfig,
) -> Result<(), String> {
    for table in &plugin.manifest().tables {
        if let Some(fault) = sluice_stream::partitioning_fault(table, layout) {
            return Err(fault);
        }
        let new = sluice_warehouse::file_schema(&sluice_stream::table_schema(table));
        let Ok(Some(old)) = schemas.of(warehouse, &table.name).await else { continue };
        sluice_stream::check_evolution(&old, &new)
            .map_err(|reason| format!("table `{}`: incompatible schema change: {reason}", table.name))?;
    }
    Ok(())
}
