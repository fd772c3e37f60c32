//! Loops forever in `transform` and in `split`: the host must interrupt it at the call deadline.
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

/// Spins until the host interrupts the call.
fn spin(len: usize) {
    let mut spins = 0u64;
    while std::hint::black_box(len) < usize::MAX {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
}

hostile_plugin!(EndlessLoop, "endless-loop", |batch| {
    spin(batch.len());
    sluice_plugin_sdk::Output::default()
}, split: |batch| {
    spin(batch.len());
    sluice_plugin_sdk::SplitOutput::default()
});
