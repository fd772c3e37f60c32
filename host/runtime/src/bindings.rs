//! Host-side bindings generated from `wit/plugin.wit` (contract `sluice:plugin@0.1.0`).
//!
//! This is the only module that runs `bindgen!`; the rest of the crate converts the generated
//! types into the validated types of [`crate::output`] and [`crate::manifest`].

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit/plugin.wit",
});

pub use sluice::plugin::types;
