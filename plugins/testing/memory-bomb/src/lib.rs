//! Allocates without bound in `transform`: the host must stop it at the memory cap.
#![allow(missing_docs)]

#[macro_use]
#[path = "../../common.rs"]
mod common;

hostile_plugin!(MemoryBomb, "memory-bomb", |_batch| {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
});
