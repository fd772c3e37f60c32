//! A complete API over real plugins, a real auth store and a real spool in a temp directory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, Response};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::Value;
use sluice_api::{ApiLimits, ApiState, SourceTable};
use sluice_auth::{AuthPolicy, AuthStore};
use sluice_log::{BoxFuture, LogError, Position, Provenance, RecordLog, Remembered, Run, SpoolConfig, SqliteSpool};
use sluice_runtime::{BundledPlugin, PluginEngine, PluginRegistry};
use tower::ServiceExt;

pub const PASSWORD: &str = "hospital-password";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub auth: Arc<AuthStore>,
    pub spool: Arc<SqliteSpool>,
    pub state: ApiState,
}

pub fn bundled() -> Vec<BundledPlugin> {
    sluice_plugin_artifacts::BUNDLED.to_vec()
}

pub fn harness_with(limits: ApiLimits, policy: AuthPolicy, log: Option<Arc<dyn RecordLog>>) -> Harness {
    harness_with_plugins(limits, policy, log, &[])
}

/// A harness whose plugin directory holds copies of `plugins` (paths of `.wasm` files) beside
/// the bundled plugins.
pub fn harness_with_plugins(
    limits: ApiLimits,
    policy: AuthPolicy,
    log: Option<Arc<dyn RecordLog>>,
    plugins: &[&str],
) -> Harness {
    harness_with_sandbox(limits, policy, log, plugins, Default::default())
}

/// [`harness_with_plugins`] under the plugin limits `sandbox`.
pub fn harness_with_sandbox(
    limits: ApiLimits,
    policy: AuthPolicy,
    log: Option<Arc<dyn RecordLog>>,
    plugins: &[&str],
    sandbox: sluice_runtime::SandboxConfig,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins_dir).unwrap();
    for plugin in plugins {
        let path = std::path::Path::new(plugin);
        std::fs::copy(path, plugins_dir.join(path.file_name().unwrap())).unwrap();
    }
    let engine = PluginEngine::new(sandbox, None).unwrap();
    let registry = PluginRegistry::open(&engine, Some(&plugins_dir), &bundled()).unwrap();
    let sources = SourceTable::new(registry, HashMap::new()).unwrap();
    let auth = Arc::new(AuthStore::open(&dir.path().join("auth.db"), policy).unwrap());
    auth.add_user("hospital", PASSWORD).unwrap();
    auth.grant("hospital", "patients").unwrap();
    auth.grant("hospital", "admissions").unwrap();
    auth.add_user("lab", "lab-password").unwrap();
    auth.grant("lab", "lab_results").unwrap();
    let spool = Arc::new(SqliteSpool::open(SpoolConfig::new(dir.path().join("spool.db"))).unwrap());
    let log: Arc<dyn RecordLog> = log.unwrap_or_else(|| spool.clone());
    let state = ApiState::new(sources, auth.clone(), log, limits);
    Harness { dir, auth, spool, state }
}

pub fn harness() -> Harness {
    harness_with(ApiLimits::default(), AuthPolicy::default(), None)
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

impl Harness {
    pub fn router(&self) -> Router {
        sluice_api::app(self.state.clone()).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))))
    }

    pub async fn send(&self, request: Request<Body>) -> (u16, Value, Response<Body>) {
        let response = self.router().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json, Response::from_parts(parts, Body::empty()))
    }

    pub async fn post(
        &self,
        path: &str,
        auth: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> (u16, Value, Response<Body>) {
        let mut request = Request::post(path);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        // As HTTP clients do for a body of known length (an empty one included).
        let body: Body = body.into();
        if let Some(length) = axum::body::HttpBody::size_hint(&body).exact() {
            request = request.header("content-length", length);
        }
        self.send(request.body(body).unwrap()).await
    }

    /// Records of `source` in the spool, over all partitions.
    pub fn spooled(&self, source: &str) -> Vec<sluice_log::StoredRecord> {
        (0..4).flat_map(|p| self.spool.read(source, p, 0, 100_000).unwrap()).collect()
    }
}

/// A log that is down.
pub struct DownLog;

impl RecordLog for DownLog {
    fn append<'a>(&'a self, _: &'a str, _: &'a Provenance, _: Run) -> BoxFuture<'a, Result<Vec<Position>, LogError>> {
        Box::pin(async { Err(LogError::Unavailable("broker unreachable".into())) })
    }
    fn append_remembered<'a>(
        &'a self,
        source: &'a str,
        provenance: &'a Provenance,
        records: Run,
        _: Vec<Remembered>,
    ) -> BoxFuture<'a, Result<Vec<Position>, LogError>> {
        self.append(source, provenance, records)
    }
    fn remembered<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<Remembered>, LogError>> {
        Box::pin(async { Err(LogError::Unavailable("broker unreachable".into())) })
    }
    fn is_ready(&self) -> bool {
        false
    }
    fn kind(&self) -> &'static str {
        "down"
    }
}
