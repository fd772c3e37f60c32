//! Allocates without bound in `transform`: the host must stop it at the memory cap.
#![allow(missing_docs)]

#[path = "../../common.rs"]
mod common;

use sluice_plugin_sdk::{Batch, Manifest, Output, Plugin, Settings, SplitOutput, export_plugin};

pub struct MemoryBomb;

impl Plugin for MemoryBomb {
    fn manifest() -> Manifest {
        common::manifest("memory-bomb", "0.1.0")
    }
    fn configure(_: &Settings) -> Result<Self, String> {
        Ok(Self)
    }
    fn split(&self, _: &Batch<'_>) -> SplitOutput {
        SplitOutput::default()
    }
    fn transform(&self, _: &Batch<'_>) -> Output {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

export_plugin!(MemoryBomb);
