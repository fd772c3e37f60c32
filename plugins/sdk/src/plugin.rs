//! The trait a plugin implements; `export_plugin!` turns an implementation into a component.

use crate::batch::Batch;
use crate::output::{Output, SplitOutput};
use crate::settings::Settings;
use sluice_contract::Manifest;

/// A source plugin. Implement this directly for full control (several tables per record, a
/// custom format), or implement [`RecordPlugin`](crate::RecordPlugin) for one table of flat
/// records and wrap it in [`Records`](crate::Records).
pub trait Plugin: Sized + 'static {
    /// What the plugin is and writes. Must not depend on settings.
    fn manifest() -> Manifest;

    /// Builds a configured plugin. `settings` has been checked against the manifest's keys and
    /// has defaults filled in; refuse bad values with a message for the operator.
    fn configure(settings: &Settings) -> Result<Self, String>;

    /// Splits payloads into single records in a canonical form that `transform` accepts,
    /// validating each (the API's edge check).
    fn split(&self, batch: &Batch<'_>) -> SplitOutput;

    /// Turns payloads into typed rows per table.
    fn transform(&self, batch: &Batch<'_>) -> Output;
}
