//! What the stream knows of each table's schema: its committed files' and its open files'.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use sluice_warehouse::{Warehouse, WarehouseError};
use tokio::sync::{Mutex, MutexGuard};

/// Per table, the schema rows written to it so far follow (`None`: no file yet), open files
/// included: the stream records a schema before it holds rows of it. Shared by every source's
/// stream, and by whoever admits plugin versions (so that a version the open files cannot follow
/// is refused too, not only one the committed files cannot). Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct TableSchemas {
    known: Arc<Mutex<HashMap<String, Option<SchemaRef>>>>,
}

impl TableSchemas {
    /// The schema `table`'s rows follow: as the stream knows it, else as the warehouse
    /// records it (every column its committed files have had).
    pub async fn of(&self, warehouse: &Warehouse, table: &str) -> Result<Option<SchemaRef>, WarehouseError> {
        if let Some(known) = self.known.lock().await.get(table) {
            return Ok(known.clone());
        }
        warehouse.written_schema(table).await
    }

    pub(crate) async fn lock(&self) -> MutexGuard<'_, HashMap<String, Option<SchemaRef>>> {
        self.known.lock().await
    }
}
