//! What the stream knows of each table's schema: its committed files' and its open files'.

use std::collections::HashMap;
use std::future::Future;
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
    /// The schema `table`'s rows follow: what this server knows of it (its open files
    /// included) merged with what the warehouse records now (every column the committed files
    /// of every instance have had), so that a column another instance added since this one
    /// read the table counts too. When the warehouse cannot be read, what this server knows.
    pub async fn of(&self, warehouse: &Warehouse, table: &str) -> Result<Option<SchemaRef>, WarehouseError> {
        let known = self.known.lock().await.get(table).cloned().flatten();
        match warehouse.written_schema(table).await {
            Ok(written) => Ok(combined(known, written)),
            Err(error) if known.is_some() => {
                tracing::warn!(%error, table, "cannot read the table's schema records; judging by what this server wrote");
                Ok(known)
            }
            Err(error) => Err(error),
        }
    }

    pub(crate) async fn lock(&self) -> MutexGuard<'_, HashMap<String, Option<SchemaRef>>> {
        self.known.lock().await
    }
}

/// What this server knows of a table (`known`) with what the warehouse records of it
/// (`written`, other instances' commits included): `known`'s columns first.
pub(crate) fn combined(known: Option<SchemaRef>, written: Option<SchemaRef>) -> Option<SchemaRef> {
    match (known, written) {
        (Some(known), Some(written)) => {
            let merged = crate::schema::merged(&known, &written);
            Some(if merged == *known { known } else { Arc::new(merged) })
        }
        (known, written) => known.or(written),
    }
}

/// Whether rows of `schema` may join `table` beside the files written so far ([`check_evolution`]);
/// if so, `known` takes them in (the table's schema becomes the merge). `read` reads what the
/// warehouse records of the table: when this server has not read the table yet, and when the rows
/// bring a column (or allow a NULL) this server has not written, since another instance may have
/// written that column since, perhaps of another type.
///
/// [`check_evolution`]: crate::schema::check_evolution
pub(crate) async fn admit_rows<E, F, Fut>(
    known: &mut HashMap<String, Option<SchemaRef>>,
    table: &str,
    schema: SchemaRef,
    mut read: F,
) -> Result<Result<(), String>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<SchemaRef>, E>>,
{
    let seen = match known.get(table) {
        Some(seen) => seen.clone(),
        None => {
            let written = read().await?;
            known.insert(table.to_string(), written.clone());
            written
        }
    };
    let Some(mut old) = seen else {
        // The first schema a table gets is the one later versions must follow.
        known.insert(table.to_string(), Some(schema));
        return Ok(Ok(()));
    };
    if crate::schema::merged(&old, &schema) != *old
        && let Some(fresh) = combined(Some(old.clone()), read().await?)
        && fresh != old
    {
        known.insert(table.to_string(), Some(fresh.clone()));
        old = fresh;
    }
    if let Err(reason) = crate::schema::check_evolution(&old, &schema) {
        return Ok(Err(reason));
    }
    let merged = crate::schema::merged(&old, &schema);
    if merged != *old {
        known.insert(table.to_string(), Some(Arc::new(merged)));
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use sluice_warehouse::{Segment, WarehouseConfig};

    use super::*;

    fn received_at() -> Field {
        Field::new("ingest_received_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false)
    }

    #[tokio::test]
    async fn a_column_another_instance_added_after_this_one_read_the_table_counts() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse =
            Warehouse::open(&format!("file://{}/warehouse", dir.path().display()), WarehouseConfig::default()).unwrap();
        let schemas = TableSchemas::default();
        // This server read `events` when it had only the time column and wrote `note` since.
        let here = Arc::new(Schema::new(vec![received_at(), Field::new("note", DataType::Utf8, true)]));
        schemas.lock().await.insert("events".into(), Some(here.clone()));
        assert_eq!(schemas.of(&warehouse, "events").await.unwrap(), Some(here.clone()), "nothing committed yet");

        // Another instance commits rows with `score` as an integer.
        let theirs = Arc::new(Schema::new(vec![received_at(), Field::new("score", DataType::Int64, true)]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(vec![1_795_780_800_000_000]).with_timezone("UTC")),
            Arc::new(Int64Array::from(vec![7])),
        ];
        let batch = RecordBatch::try_new(theirs, columns).unwrap();
        let segment = Segment {
            source: "other".into(),
            partition: 0,
            first: 0,
            last: 0,
            tables: vec![("events".into(), vec![batch])],
            token: String::new(),
        };
        warehouse.commit(&segment).await.unwrap();

        let seen = schemas.of(&warehouse, "events").await.unwrap().unwrap();
        let names: Vec<&str> = seen.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["ingest_received_at", "note", "score"]);
        // So a version writing `score` as text is refused here too.
        let retyped = Schema::new(vec![received_at(), Field::new("score", DataType::Utf8, true)]);
        assert_eq!(
            crate::schema::check_evolution(&seen, &retyped),
            Err("column `score` changed from Int64 to Utf8".into())
        );

        // The stream's check of rows that bring `score` reads the warehouse again and refuses
        // them; rows that bring nothing new are judged without reading it.
        let mut known = HashMap::from([("events".to_string(), Some(here.clone()))]);
        let reads = std::cell::Cell::new(0);
        let read = || {
            reads.set(reads.get() + 1);
            warehouse.written_schema("events")
        };
        let verdict = admit_rows(&mut known, "events", Arc::new(retyped), read).await.unwrap();
        assert_eq!(verdict, Err("column `score` changed from Int64 to Utf8".into()));
        assert_eq!(reads.get(), 1);
        let verdict = admit_rows(&mut known, "events", here.clone(), read).await.unwrap();
        assert_eq!((verdict, reads.get()), (Ok(()), 1));
        let same_type = Schema::new(vec![received_at(), Field::new("score", DataType::Int64, true)]);
        assert_eq!(admit_rows(&mut known, "events", Arc::new(same_type), read).await.unwrap(), Ok(()));
        assert_eq!(known["events"].as_deref(), Some(&seen.as_ref().clone()));
    }

    #[tokio::test]
    async fn the_first_rows_of_a_table_nobody_wrote_set_its_schema() {
        let mut known = HashMap::new();
        let schema = Arc::new(Schema::new(vec![received_at()]));
        let read = || async { Ok::<_, WarehouseError>(None) };
        assert_eq!(admit_rows(&mut known, "events", schema.clone(), read).await.unwrap(), Ok(()));
        assert_eq!(known["events"], Some(schema));
    }

    #[test]
    fn combining_keeps_this_servers_columns_first_and_either_side_alone() {
        let a = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let b = Arc::new(Schema::new(vec![Field::new("b", DataType::Utf8, true)]));
        assert_eq!(combined(None, None), None);
        assert_eq!(combined(Some(a.clone()), None), Some(a.clone()));
        assert_eq!(combined(None, Some(b.clone())), Some(b.clone()));
        let both = combined(Some(a.clone()), Some(b)).unwrap();
        assert_eq!(both.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(Arc::ptr_eq(&combined(Some(a.clone()), Some(a.clone())).unwrap(), &a), "unchanged: the same schema");
    }
}
