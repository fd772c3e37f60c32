//! A plugin compiled into a host binary.

/// A plugin compiled into the binary: its file name and bytes.
#[derive(Debug, Clone, Copy)]
pub struct BundledPlugin {
    /// File name, e.g. `patients.wasm`.
    pub file_name: &'static str,
    /// The component bytes.
    pub wasm: &'static [u8],
}
