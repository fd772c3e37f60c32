//! Built against `sluice:plugin@9.0.0` (a copy of the contract with another version): the host
//! must refuse it and name both versions.
#![allow(missing_docs)]
// Written against the WIT alone: natively the crate is empty, so that a `cargo test --workspace`
// linking every member links in any profile.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "wit/plugin.wit", world: "plugin" });

use exports::sluice::plugin::source::Guest;
use sluice::plugin::types::{Batch, Manifest, SplitRecords, Transformed};

struct Future;

impl Guest for Future {
    fn describe() -> Manifest {
        Manifest {
            name: "future-contract".into(),
            version: "9.0.0".into(),
            doc: String::new(),
            content_types: vec!["application/json".into()],
            settings: Vec::new(),
            tables: Vec::new(),
        }
    }
    fn configure(_: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }
    fn split(input: Batch) -> SplitRecords {
        SplitRecords { records: input, origins: Vec::new(), rejected: Vec::new() }
    }
    fn transform(_: Batch) -> Transformed {
        Transformed { tables: Vec::new(), rejected: Vec::new() }
    }
}

export!(Future);
