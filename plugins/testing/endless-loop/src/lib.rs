//! Loops forever in `transform`: the host must interrupt it at the call deadline.
#![allow(missing_docs)]

#[path = "../../common.rs"]
mod common;

use sluice_plugin_sdk::{Batch, Manifest, Output, Plugin, Settings, SplitOutput, export_plugin};

pub struct EndlessLoop;

impl Plugin for EndlessLoop {
    fn manifest() -> Manifest {
        common::manifest("endless-loop", "0.1.0")
    }
    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
    fn split(&self, _: &Batch<'_>) -> SplitOutput {
        SplitOutput::default()
    }
    fn transform(&self, batch: &Batch<'_>) -> Output {
        let mut spins = 0u64;
        while std::hint::black_box(batch.len()) < usize::MAX {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
        Output::default()
    }
}

export_plugin!(EndlessLoop);
