//! The router and the server.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::ingest;
use crate::limits::{MAX_HEADER_BYTES, MAX_HEADERS};
use crate::state::ApiState;

const RECORDS: &str = "/v1/sources/{source}/records";
const SOURCES: &str = "/v1/sources";
const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const METRICS: &str = "/metrics";
const OPENAPI: &str = "/openapi.json";
const SEED_PATIENTS: &str = "/api_patient";
const SEED_ADMISSIONS: &str = "/api_admissions";
const SEED_LAB_RESULTS: &str = "/api_lab_results";
/// The routes without a path parameter.
const FIXED_ROUTES: [&str; 8] =
    [SOURCES, HEALTHZ, READYZ, METRICS, OPENAPI, SEED_PATIENTS, SEED_ADMISSIONS, SEED_LAB_RESULTS];

/// The API's router.
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route(RECORDS, post(ingest::post_records))
        .route(SOURCES, get(list_sources))
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz))
        .route(METRICS, get(metrics))
        .route(OPENAPI, get(openapi))
        .route(SEED_PATIENTS, post(ingest::api_patient))
        .route(SEED_ADMISSIONS, post(ingest::api_admissions))
        .route(SEED_LAB_RESULTS, post(ingest::api_lab_results))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(not_found)
        .layer(axum::middleware::from_fn(headers_within_limits))
        .with_state(state)
}

/// Refuses a request whose header fields pass [`MAX_HEADERS`] or [`MAX_HEADER_BYTES`] with a
/// 431 that says so (hyper's own limits, well above these, answer with an empty body).
async fn headers_within_limits(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        let count = headers.len();
        return ApiError::HeadersTooLarge { count, bytes }.into_response();
    }
    next.run(request).await
}

/// No route: a path that is one of the routes but for a trailing or doubled slash (as senders
/// configured with a base URL ending in `/` send) is told so, not only refused. (A source name
/// is echoed only when it is a valid one, so the answer stays short and plain.)
async fn not_found(uri: axum::http::Uri) -> ApiError {
    let path = uri.path();
    let trimmed: String = path.split('/').filter(|segment| !segment.is_empty()).flat_map(|s| ["/", s]).collect();
    let (records_before, records_after) = RECORDS.split_once("{source}").expect("the records route has a source");
    let is_route = |p: &str| {
        FIXED_ROUTES.contains(&p)
            || p.strip_prefix(records_before)
                .and_then(|rest| rest.strip_suffix(records_after))
                .is_some_and(sluice_auth::is_valid_name)
    };
    if trimmed.len() < path.len() && is_route(&trimmed) {
        let doubled = path.trim_end_matches('/').contains("//");
        let slash = match (doubled, path.ends_with('/')) {
            (true, true) => "the doubled and the trailing slashes",
            (true, false) => "the doubled slash",
            (false, _) => "the trailing slash",
        };
        return ApiError::NotFound(format!(": drop {slash} (`{trimmed}`)"));
    }
    ApiError::NotFound(String::new())
}

/// `GET /v1/sources`: every source with its plugin, content types and table schemas.
#[utoipa::path(get, path = "/v1/sources", tag = "sources", responses((status = 200, description = "Sources and schemas"), (status = 401, description = "Missing or bad credentials")), security(("basic" = []), ("bearer" = [])))]
pub async fn list_sources(
    State(state): State<ApiState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let request_id = ingest::request_id();
    let principal = authenticate(&state, &headers, client.ip(), None, &request_id).await?;
    let sources: Vec<Value> = state
        .sources
        .names()
        .into_iter()
        .filter_map(|name| {
            let source = state.sources.get(&name)?;
            let plugin = source.plugin().ok()?;
            let m = plugin.manifest();
            Some(json!({
                "name": name,
                "granted": principal.may_post(&name),
                "plugin": m.name,
                "version": m.version,
                "digest": plugin.digest(),
                "content_types": m.content_types,
                "tables": m.tables,
            }))
        })
        .collect();
    metrics::histogram!(crate::metrics::LATENCY, "route" => "sources").record(started.elapsed().as_secs_f64());
    Ok(Json(json!({ "sources": sources })))
}

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "status", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: ready to accept records (the log is reachable).
#[utoipa::path(get, path = "/readyz", tag = "status", responses((status = 200, description = "Ready"), (status = 503, description = "The log is unavailable")))]
pub async fn readyz(State(state): State<ApiState>) -> Response {
    let log = state.log.is_ready();
    let disk = state.disk.as_ref().is_none_or(|disk| disk.has_room());
    let audit = state.auth.audit_writable();
    let ready = log && disk && audit;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({ "ready": ready, "log": state.log.kind(), "log_ready": log, "disk_room": disk, "audit_writable": audit });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "status", responses((status = 200, description = "Prometheus metrics", content_type = "text/plain")))]
pub async fn metrics(State(state): State<ApiState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}
