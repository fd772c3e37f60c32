//! Panics in `transform`, and in `split` on the body `panic in split`: the host must report the
//! trap and carry on. (A Rust guest's panic message goes to its stderr, as a Python plugin's
//! traceback does.)
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

hostile_plugin!(Panics, "panics", |batch| {
    if !batch.is_empty() {
        panic!("deliberate panic in a test plugin");
    }
    sluice_plugin_sdk::Output::default()
}, split: |batch| {
    let mut out = sluice_plugin_sdk::SplitOutput::new("application/json");
    for (input, payload) in batch.payloads() {
        if payload == b"panic in split" {
            panic!("deliberate panic in split");
        }
        let lines = payload.split(|b| *b == b'\n').filter(|line| !line.is_empty());
        for (record, line) in lines.enumerate() {
            out.push(line, sluice_plugin_sdk::Origin { input, record: record as u32, key: None, id: None });
        }
    }
    out
});
