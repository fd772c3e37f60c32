//! Paths of the test plugins (every folder of `plugins/testing/`, hostile ones among them),
//! compiled for `wasm32-wasip2` by this crate's build script: one constant per folder, named
//! after it (`plugins/testing/endless-loop` is [`ENDLESS_LOOP`]).
//!
//! Host tests take this crate as a dev-dependency; nothing that ships depends on it.

include!(concat!(env!("OUT_DIR"), "/test_plugins.rs"));
