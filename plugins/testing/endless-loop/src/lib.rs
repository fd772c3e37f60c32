//! Loops forever in `transform`: the host must interrupt it at the call deadline.
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

hostile_plugin!(EndlessLoop, "endless-loop", |batch| {
    let mut spins = 0u64;
    while std::hint::black_box(batch.len()) < usize::MAX {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
    sluice_plugin_sdk::Output::default()
});
