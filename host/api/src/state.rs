//! What every handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sluice_auth::AuthStore;
use sluice_log::RecordLog;

use crate::limits::ApiLimits;
use sluice_runtime::SourceTable;

/// Shared state of the API. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) sources: SourceTable,
    pub(crate) auth: Arc<AuthStore>,
    pub(crate) log: Arc<dyn RecordLog>,
    pub(crate) limits: ApiLimits,
    pub(crate) metrics: PrometheusHandle,
    /// Idempotency keys whose first request is being handled.
    pub(crate) in_flight: crate::idempotency::InFlight,
}

impl ApiState {
    /// State over the given sources, auth store and log.
    pub fn new(sources: SourceTable, auth: Arc<AuthStore>, log: Arc<dyn RecordLog>, limits: ApiLimits) -> Self {
        Self { sources, auth, log, limits, metrics: crate::metrics::handle(), in_flight: Default::default() }
    }
}
