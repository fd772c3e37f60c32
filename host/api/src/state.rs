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
    /// Fault injection for tests: how long to hold an answer after the records are durable.
    pub(crate) answer_delay: Option<std::time::Duration>,
    /// The floor on free disk space below which requests are refused.
    pub(crate) disk: Option<crate::DiskGuard>,
}

impl ApiState {
    /// State over the given sources, auth store and log.
    pub fn new(sources: SourceTable, auth: Arc<AuthStore>, log: Arc<dyn RecordLog>, limits: ApiLimits) -> Self {
        Self {
            sources,
            in_flight: crate::idempotency::InFlight::shared_with(&auth),
            auth,
            log,
            limits,
            metrics: crate::metrics::handle(),
            answer_delay: None,
            disk: None,
        }
    }

    /// Refuses requests (507) while the disk `guard` watches is below its floor.
    pub fn with_disk_guard(mut self, guard: crate::DiskGuard) -> Self {
        self.disk = Some(guard);
        self
    }

    /// Fault injection for crash tests: holds every answer this long after its records are
    /// durable, so that a process killed meanwhile has stored records whose answers are lost
    /// (what a sender's retries must survive). Never set in production.
    pub fn with_answer_delay(mut self, delay: std::time::Duration) -> Self {
        self.answer_delay = Some(delay);
        self
    }
}
