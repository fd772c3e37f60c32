//! The shared test vectors of the flat-record readers (`plugins/sdk-vectors/flat-records.json`),
//! held against this SDK, the reference the Python and JavaScript SDKs are held to as well.

use serde_json::{Value as Json, json};
use sluice_plugin_sdk::{Batch, Column, ColumnType, Field, OwnedBatch, Plugin, RecordPlugin, Records, Settings, Value};

const VECTORS: &str = include_str!("../../sdk-vectors/flat-records.json");

struct Vectors;

impl RecordPlugin for Vectors {
    const NAME: &'static str = "vectors";
    const VERSION: &'static str = "0.1.0";
    const DOC: &'static str = "The schema of the shared test vectors.";
    const TABLE: &'static str = "vectors";
    const TABLE_DOC: &'static str = "One row per record.";
    const KEY_FIELD: Option<usize> = Some(0);

    fn fields() -> Vec<Field> {
        let field = |source: &'static str, column_type, doc| {
            Field::new(source, Column::new(&source.to_lowercase(), column_type, doc))
        };
        vec![
            Field::new("PatientID", Column::new("patientid", ColumnType::String, "Key.").required()),
            field("Count", ColumnType::Int32, "An int32."),
            field("Big", ColumnType::Int64, "An int64."),
            field("Value", ColumnType::Float64, "A double."),
            field("Flag", ColumnType::Boolean, "A boolean."),
            field("Day", ColumnType::Date, "A date."),
            field("At", ColumnType::Timestamp, "A timestamp."),
            field("Note", ColumnType::String, "Free text."),
        ]
    }

    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
}

fn cell(value: Value<'_>) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => json!(b),
        Value::Int32(i) => json!(i),
        Value::Int64(i) => json!(i),
        Value::Float64(f) => json!(f),
        Value::String(s) => json!(s),
        Value::Date(d) => json!(d),
        Value::Timestamp(t) | Value::Instant(t) => json!(t),
    }
}

/// A rejection as the vectors compare it: payload, record, field, reason.
type Rejected = (u32, u32, Option<String>, String);

/// The rows and rejections `transform` makes of `batch`, as the vectors write them.
fn transformed(plugin: &Records<Vectors>, batch: &Batch<'_>) -> (Json, Vec<Rejected>) {
    let out = plugin.transform(batch);
    let table = out.table("vectors").expect("the table");
    let rows: Vec<Json> =
        (0..table.len()).map(|row| Json::Array(table.columns.iter().map(|c| cell(c.get(row))).collect())).collect();
    let rejected = out.rejected.iter().map(|r| (r.input, r.record, r.field.clone(), r.reason.clone())).collect();
    (Json::Array(rows), rejected)
}

#[test]
fn the_rust_sdk_reads_every_vector_as_written() {
    let vectors: Json = serde_json::from_str(VECTORS).unwrap();
    let declared: Vec<Json> = Vectors::fields()
        .iter()
        .map(|f| json!({"source": f.source, "type": f.column.column_type.name(), "nullable": f.column.nullable}))
        .collect();
    assert_eq!(vectors["fields"], Json::Array(declared), "the vectors' schema is this test's");
    let plugin = Records::<Vectors>::configure(&Settings::default()).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let body =
            OwnedBatch::single(case["content_type"].as_str().unwrap(), case["body"].as_str().unwrap().as_bytes());

        let (rows, rejected) = transformed(&plugin, &body.as_batch());
        assert_eq!(rows, case["rows"], "{name}: rows");
        let expected = case["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), expected.len(), "{name}: rejections {rejected:?}");
        for ((_, record, field, reason), want) in rejected.iter().zip(expected) {
            assert_eq!(json!(record), want["record"], "{name}: {reason}");
            assert_eq!(json!(field), want["field"], "{name}: {reason}");
            match (want.get("reason"), want.get("reason_prefix")) {
                (Some(exact), _) => assert_eq!(reason, exact.as_str().unwrap(), "{name}"),
                (None, Some(prefix)) => {
                    assert!(reason.starts_with(&format!("{}:", prefix.as_str().unwrap())), "{name}: {reason}")
                }
                (None, None) => panic!("{name}: a rejection without a reason"),
            }
        }

        // split, then transform of its canonical records: the same rows, the keys of the vector.
        let split = plugin.split(&body.as_batch());
        let keys: Vec<Json> = split.origins.iter().map(|o| json!(o.key)).collect();
        assert_eq!(Json::Array(keys), case["keys"], "{name}: keys");
        assert_eq!(split.rejected.len(), expected.len(), "{name}: split rejects what transform rejects");
        let canonical = Batch::new(&split.content_type, &split.data, &split.ends);
        let (again, refused) = transformed(&plugin, &canonical);
        assert_eq!(again, case["rows"], "{name}: rows from the canonical records");
        assert!(refused.is_empty(), "{name}: transform refused canonical records: {refused:?}");
    }
}
