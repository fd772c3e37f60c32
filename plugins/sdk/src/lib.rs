//! The sluice plugin SDK: write a source plugin as a trait impl and a schema.
//!
//! Implement [`RecordPlugin`] for flat records (one row per record, one table) and export it with
//! [`export_plugin!`]`(Records<YourPlugin>)`, or implement the lower-level [`Plugin`] for several
//! tables or a format of your own. The [`guide`] (`plugins/README.md`) walks from zero to a loaded
//! plugin; its Rust example is this crate's doctest.
//!
//! Build with `cargo build --target wasm32-wasip2`; natively the same crate is a plain library
//! whose plugin can be tested and benchmarked without a host (see [`OwnedBatch`]).

/// The plugin author's guide, `plugins/README.md`: its Rust example is compiled and run as a
/// doctest, so the guide cannot drift from the SDK.
#[doc = include_str!("../../README.md")]
pub mod guide {}

mod batch;
mod flat;
#[doc(hidden)]
pub mod guest;
mod output;
mod plugin;
pub mod records;
mod settings;
mod structure;
mod tabular;
pub mod values;

pub use batch::{Batch, OwnedBatch};
pub use output::{ColumnBuilder, ColumnValues, Origin, Output, Rejection, SplitOutput, TableBuilder, Value};
pub use plugin::Plugin;
pub use settings::Settings;
pub use sluice_contract::{Column, ColumnType, Manifest, Setting, TableSchema};
pub use tabular::{CANONICAL_CONTENT_TYPE, Field, RecordPlugin, Records};

/// Bindings generated from `wit/plugin.wit`. Plugin authors do not need them.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/plugin.wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export_source",
        default_bindings_module: "sluice_plugin_sdk::bindings",
    });
}

/// Exports a [`Plugin`] implementation as the component's `sluice:plugin/source` interface.
///
/// Only emits code when compiling for WebAssembly, so the same crate links natively (for tests
/// and benchmarks) next to other plugins.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::exports::sluice::plugin::source::Guest;
            use $crate::bindings::sluice::plugin::types as wit;

            struct Exports;

            impl Guest for Exports {
                fn describe() -> wit::Manifest {
                    $crate::guest::describe::<$plugin>()
                }
                fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
                    $crate::guest::configure::<$plugin>(settings)
                }
                fn split(input: wit::Batch) -> wit::SplitRecords {
                    $crate::guest::split::<$plugin>(input)
                }
                fn transform(input: wit::Batch) -> wit::Transformed {
                    $crate::guest::transform::<$plugin>(input)
                }
            }

    $crate::bindings::export_source!(Exports with_types_in $crate::bindings);
        };
    };
}
