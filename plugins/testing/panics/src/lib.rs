//! Panics in `transform`: the host must report the trap and carry on.
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

hostile_plugin!(Panics, "panics", |batch| {
    if !batch.is_empty() {
        panic!("deliberate panic in a test plugin");
    }
    sluice_plugin_sdk::Output::default()
});
