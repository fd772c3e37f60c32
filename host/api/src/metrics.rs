//! Prometheus metrics: requests, records accepted/rejected per source, auth failures, latency.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request count, by route and status.
pub(crate) const REQUESTS: &str = "sluice_http_requests_total";
/// Request latency in seconds, by route.
pub(crate) const LATENCY: &str = "sluice_http_request_duration_seconds";
/// Records accepted, by source.
pub(crate) const ACCEPTED: &str = "sluice_records_accepted_total";
/// Records rejected at the edge, by source.
pub(crate) const REJECTED: &str = "sluice_records_rejected_total";
/// Failed authentications, by reason.
pub(crate) const AUTH_FAILURES: &str = "sluice_auth_failures_total";
/// Answers being held back by fault injection right now (`SLUICE_FAULT_ANSWER_DELAY_MS`, crash
/// tests only): a kill while it is above zero loses answers of stored records.
pub(crate) const ANSWERS_HELD: &str = "sluice_fault_answers_held";

/// The process-wide recorder (installed on first use).
pub(crate) fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(LATENCY.into()),
                    &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                )
                .expect("valid buckets");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}
