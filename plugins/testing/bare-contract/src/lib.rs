//! A plugin written against the WIT alone, without the SDK, as a Python or JavaScript guest is:
//! `configure` keeps the settings exactly as the host passed them (so a test sees which defaults
//! the host filled in), `split` takes each payload as one record and labels the records with the
//! content type in its `canonical-type` setting (which may be one the manifest does not
//! declare), and `transform` writes one row per setting, `key=value`. For the instance-reuse
//! tests, `reserve-mib` makes `configure` hold that much memory (an interpreter's heap) and
//! `grow-mib` makes every `transform` keep that much more (a plugin that leaks).
//!
//! It is built against the frozen contract 0.1.0 (`wit/deps/sluice-plugin@0.1.0`), so every test
//! that runs it shows that plugins built for an older contract still load and run.
#![allow(missing_docs)]
// Written against the WIT alone: natively the crate is empty, so that a `cargo test --workspace`
// linking every member links in any profile.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;

wit_bindgen::generate!({ path: "../../../wit/deps/sluice-plugin@0.1.0", world: "plugin" });

use exports::sluice::plugin::source::Guest;
use sluice::plugin::types::{
    Batch, Column, ColumnData, ColumnType, ColumnValues, Manifest, Origin, Setting, SplitRecords, StringValues,
    TableRows, TableSchema, Transformed,
};

thread_local! {
    static SETTINGS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    static HELD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// The value of setting `key` in MiB (0 when absent).
fn mib(key: &str) -> usize {
    SETTINGS.with(|s| s.borrow().iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok()).unwrap_or(0))
}

/// Allocates `mib` MiB, writes to every page, and keeps it.
fn hold(mib: usize) {
    if mib > 0 {
        HELD.with(|held| held.borrow_mut().push(vec![1u8; mib << 20]));
    }
}

struct BareContract;

impl Guest for BareContract {
    fn describe() -> Manifest {
        let setting = |name: &str, default: Option<&str>| Setting {
            name: name.into(),
            doc: String::new(),
            default_value: default.map(Into::into),
        };
        Manifest {
            name: "bare-contract".into(),
            version: "0.1.0".into(),
            doc: String::new(),
            content_types: vec!["application/json".into()],
            settings: vec![
                setting("canonical-type", Some("application/json")),
                setting("greeting", Some("hello")),
                setting("optional", None),
                setting("reserve-mib", Some("0")),
                setting("grow-mib", Some("0")),
            ],
            tables: vec![TableSchema {
                name: "settings".into(),
                doc: String::new(),
                columns: vec![Column {
                    name: "setting".into(),
                    type_: ColumnType::String,
                    nullable: false,
                    doc: String::new(),
                }],
            }],
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        SETTINGS.with(|s| *s.borrow_mut() = settings);
        hold(mib("reserve-mib"));
        Ok(())
    }

    fn split(input: Batch) -> SplitRecords {
        let content_type = SETTINGS.with(|s| {
            s.borrow().iter().find(|(k, _)| k == "canonical-type").map(|(_, v)| v.clone()).unwrap_or_default()
        });
        let origins = (0..input.ends.len() as u32).map(|input| Origin { input, record: 0, key: None }).collect();
        SplitRecords { records: Batch { content_type, ..input }, origins, rejected: Vec::new() }
    }

    fn transform(input: Batch) -> Transformed {
        hold(mib("grow-mib"));
        let mut data = Vec::new();
        let mut offsets = vec![0];
        let mut inputs = Vec::new();
        if !input.ends.is_empty() {
            SETTINGS.with(|s| {
                for (key, value) in s.borrow().iter() {
                    data.extend_from_slice(format!("{key}={value}").as_bytes());
                    offsets.push(data.len() as u32);
                    inputs.push(0);
                }
            });
        }
        let column = ColumnData { valid: Vec::new(), values: ColumnValues::String(StringValues { offsets, data }) };
        Transformed {
            tables: vec![TableRows { table: "settings".into(), inputs, columns: vec![column] }],
            rejected: Vec::new(),
        }
    }
}

export!(BareContract);
