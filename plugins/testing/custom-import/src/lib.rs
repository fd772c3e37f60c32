//! Exports the plugin contract and imports a function of its own (`run-command`), which no
//! sluice provides: the host must refuse to load it and name the import.
#![allow(missing_docs)]
// Natively there is no host to provide `run-command`: the crate is empty there, so that a
// `cargo test --workspace` linking every member still links.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ path: "wit", world: "test:custom-import/plugin", generate_all });

use exports::sluice::plugin::source::Guest;
use sluice::plugin::types::{Batch, Manifest, SplitRecords, Transformed};

struct CustomImport;

impl Guest for CustomImport {
    fn describe() -> Manifest {
        Manifest {
            name: "custom-import".into(),
            version: "0.1.0".into(),
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
    fn transform(input: Batch) -> Transformed {
        let _ = run_command(&String::from_utf8_lossy(&input.data));
        Transformed { tables: Vec::new(), rejected: Vec::new() }
    }
}

export!(CustomImport);
