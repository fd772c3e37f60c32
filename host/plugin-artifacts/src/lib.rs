//! The bundled plugins (every folder of `plugins/bundled/`), compiled for `wasm32-wasip2` by this
//! crate's build script.
//!
//! - [`BUNDLED`]: their bytes, embedded in the sluice binary.
//! - [`PLUGINS_DIR`]: a directory holding a copy of the bundled `.wasm` files.
//!
//! The test plugins are another crate (`sluice-test-plugins`), a dev-dependency only, so a
//! release build of sluice never compiles them.

pub use sluice_contract::BundledPlugin;

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
