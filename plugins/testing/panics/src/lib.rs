//! Panics in `transform`: the host must report the trap and carry on.
#![allow(missing_docs)]

#[path = "../../common.rs"]
mod common;

use sluice_plugin_sdk::{Batch, Manifest, Output, Plugin, Settings, SplitOutput, export_plugin};

pub struct Panics;

impl Plugin for Panics {
    fn manifest() -> Manifest {
        common::manifest("panics", "0.1.0")
    }
    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
    fn split(&self, _: &Batch<'_>) -> SplitOutput {
        SplitOutput::default()
    }
    fn transform(&self, batch: &Batch<'_>) -> Output {
        if !batch.is_empty() {
            panic!("deliberate panic in a test plugin");
        }
        Output::default()
    }
}

export_plugin!(Panics);
