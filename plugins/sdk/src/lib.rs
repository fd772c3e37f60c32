//! The sluice plugin SDK: write a source plugin as a trait impl and a schema.
//!
//! ```
//! use sluice_plugin_sdk::{export_plugin, Column, ColumnType, Field, OwnedBatch, Plugin, RecordPlugin, Records, Settings};
//!
//! pub struct Vitals;
//!
//! impl RecordPlugin for Vitals {
//!     const NAME: &'static str = "vitals";
//!     const VERSION: &'static str = "0.1.0";
//!     const DOC: &'static str = "Bedside vital signs.";
//!     const TABLE: &'static str = "vitals";
//!     const TABLE_DOC: &'static str = "One measurement.";
//!     const KEY_FIELD: Option<usize> = Some(0);
//!     fn fields() -> Vec<Field> {
//!         vec![
//!             Field::new("PatientID", Column::new("patientid", ColumnType::String, "Patient").required()),
//!             Field::new("HeartRate", Column::new("heartrate", ColumnType::Int32, "Beats per minute")),
//!         ]
//!     }
//!     fn configure(_: &Settings) -> Result<Self, String> { Ok(Self) }
//! }
//!
//! export_plugin!(Records<Vitals>);
//!
//! // Natively, the same plugin runs without a host:
//! let plugin = Records::<Vitals>::configure(&Settings::default()).unwrap();
//! let out = plugin.transform(&OwnedBatch::single("text/csv", b"PatientID,HeartRate\np1,72\n").as_batch());
//! assert_eq!(out.table("vitals").unwrap().len(), 1);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2`; natively the same crate is a plain library
//! whose plugin can be tested and benchmarked without a host (see [`OwnedBatch`]).

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
