//! The plugins of this workspace, compiled for `wasm32-wasip2` by this crate's build script.
//!
//! - [`BUNDLED`]: the seed plugins, embedded in the sluice binary.
//! - [`testing`]: paths of the test plugins (hostile ones among them), for host tests.
//! - [`PLUGINS_DIR`]: a directory holding a copy of the bundled `.wasm` files.

pub use sluice_contract::BundledPlugin;

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
