//! A buggy reader: of the records of a body (one per non-blank line), `split` accepts the first
//! two, rejects the fourth and says nothing of the others, as a reader that stops at a value it
//! cannot parse would. The API must name every record it was silent about in `rejected`.
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

use sluice_plugin_sdk::{Origin, Rejection, SplitOutput};

hostile_plugin!(DropsRecords, "drops-records", |batch| {
    // `transform` is sound: a row per record it is given.
    let table = <DropsRecords as sluice_plugin_sdk::Plugin>::manifest().tables.remove(0);
    let mut rows = sluice_plugin_sdk::TableBuilder::new(&table);
    for (input, payload) in batch.payloads() {
        rows.push_row(input, &[sluice_plugin_sdk::Value::String(std::str::from_utf8(payload).unwrap_or("?"))]);
    }
    sluice_plugin_sdk::Output { tables: vec![rows], rejected: Vec::new() }
}, split: |batch| {
    let mut out = SplitOutput::new("application/json");
    for (input, payload) in batch.payloads() {
        let lines = payload.split(|b| *b == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace));
        for (record, line) in lines.enumerate() {
            match record {
                0 | 1 => out.push(line, Origin { input, record: record as u32, key: None, id: None }),
                3 => out.rejected.push(Rejection { input, record: 3, reason: "the fourth is refused".into(), field: None }),
                _ => {}
            }
        }
    }
    out
});
