//! Returns 8 MiB of output for any input: the host must enforce its output cap.
#![allow(missing_docs)]

#[path = "../../common.rs"]
mod common;

use sluice_plugin_sdk::{Batch, Manifest, Output, Plugin, Settings, SplitOutput, TableBuilder, Value, export_plugin};

pub struct OversizedOutput;

impl Plugin for OversizedOutput {
    fn manifest() -> Manifest {
        common::manifest("oversized-output", "0.1.0")
    }
    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
    fn split(&self, _: &Batch<'_>) -> SplitOutput {
        SplitOutput::default()
    }
    fn transform(&self, _: &Batch<'_>) -> Output {
        let manifest = Self::manifest();
        let mut table = TableBuilder::new(&manifest.tables[0]);
        let big = "x".repeat(1 << 20);
        for _ in 0..8 {
            table.push_row(0, &[Value::String(&big)]);
        }
        Output { tables: vec![table], rejected: Vec::new() }
    }
}

export_plugin!(OversizedOutput);
