//! Allocates without bound in `transform`, and in `split` for a line holding `bomb-in-split`:
//! the host must stop it at the memory cap (per instance, and for all plugins together).
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

fn bomb() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}

hostile_plugin!(MemoryBomb, "memory-bomb", |_batch| {
    bomb()
}, split: |batch| {
    let mut out = sluice_plugin_sdk::SplitOutput::new("application/json");
    for (input, payload) in batch.payloads() {
        if payload.windows(13).any(|w| w == b"bomb-in-split") {
            bomb();
        }
        out.push(payload, sluice_plugin_sdk::Origin { input, record: 0, key: None, id: None });
    }
    out
});
