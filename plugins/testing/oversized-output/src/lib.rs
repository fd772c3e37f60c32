//! Returns 8 MiB of output for any input: the host must enforce its output cap.
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

hostile_plugin!(OversizedOutput, "oversized-output", |_batch| {
    let manifest = OversizedOutput::manifest();
    let mut table = sluice_plugin_sdk::TableBuilder::new(&manifest.tables[0]);
    let big = "x".repeat(1 << 20);
    for _ in 0..8 {
        table.push_row(0, &[sluice_plugin_sdk::Value::String(&big)]);
    }
    sluice_plugin_sdk::Output { tables: vec![table], rejected: Vec::new() }
});
