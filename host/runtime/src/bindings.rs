//! Host-side bindings generated from `wit/plugin.wit` (contract `sluice:plugin@0.1.0`).
//!
//! This is the only module that runs `bindgen!`; the rest of the crate converts the generated
//! types into the validated types of [`crate::output`] and [`crate::manifest`].

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit/plugin.wit",
});

pub use sluice::plugin::types;

/// The WIT text of every contract version this host loads plugins for, oldest first: what
/// `sluice plugin wit` prints and `sluice plugin new` writes. A released version is frozen (a
/// test holds each one's SHA-256).
pub const CONTRACT_WIT: &[(&str, &str)] = &[("0.1.0", include_str!("../../../wit/plugin.wit"))];
