//! The plugins of this workspace, compiled for `wasm32-wasip2` by this crate's build script.
//!
//! - [`BUNDLED`]: the seed plugins, embedded in the sluice binary.
//! - [`testing`]: paths of the test plugins (hostile ones among them), for host tests.
//! - [`PLUGINS_DIR`]: a directory holding a copy of the bundled `.wasm` files.

/// A plugin compiled into the binary: its file name and bytes.
#[derive(Debug, Clone, Copy)]
pub struct BundledPlugin {
    /// File name, e.g. `patients.wasm`.
    pub file_name: &'static str,
    /// The component bytes.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
