//! The ingestion API: `POST /v1/sources/{source}/records` and the seed-compatible routes,
//! authenticated (HTTP Basic or Bearer), authorized per source, validated at the edge by the
//! source's plugin, and answered 202 only once the records are durable in the log.
//!
//! [`app`] builds the router from an [`ApiState`]; [`serve`] runs it on a listener.

mod auth;
mod body;
mod charset;
mod config;
mod disk;
mod encoding;
mod error;
mod idempotency;
mod ingest;
mod limits;
mod metrics;
mod mllp;
mod openapi;
mod record_ids;
mod routes;
mod server;
mod state;

pub use axum_server::tls_rustls::RustlsConfig;
pub use body::{check_body, records_sent, unaccounted};
pub use config::{ServerConfig, ServerConfigError};
pub use disk::DiskGuard;
pub use error::ApiError;
pub use limits::ApiLimits;
pub use mllp::{MllpConfig, MllpConfigError, framed as mllp_frame, serve_mllp};
pub use routes::app;
pub use server::{ServerLimits, serve};
pub use sluice_runtime::{SourceBinding, SourceTable};
pub use state::ApiState;
