//! `POST /v1/sources/{source}/records` and the seed's routes: authenticate, authorize, check the
//! body, split it with the source's plugin, append accepted records to the log, answer.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::{Body, HttpBody, to_bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sluice_auth::{AuditEntry, Outcome};
use sluice_log::{Provenance, Remembered, Run};
use sluice_runtime::{Batch, SourceError};

use crate::auth::{authenticate, now_rfc3339};
use crate::body::{check_body, unaccounted};
use crate::charset;
use crate::encoding::Coding;
use crate::error::{ApiError, ErrorBody};
use crate::idempotency;
use crate::record_ids;
use crate::state::ApiState;

/// Bodies up to this size are split on the async thread that received them (a plugin reads
/// ~200 MB/s, so at most ~150 µs); larger ones on the blocking pool.
const INLINE_SPLIT_BYTES: usize = 32 * 1024;

/// One rejected record in a response.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectedRecord {
    /// Index of the record within the body (0 for a single record).
    pub index: u32,
    /// What is wrong with it.
    pub reason: String,
    /// The field at fault, if one is.
    pub field: Option<String>,
}

/// The answer to an ingestion request (202, or 422 when nothing was acceptable).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestResponse {
    /// Id of this request, also in the audit log.
    pub request_id: String,
    /// The source posted to.
    pub source: String,
    /// `name@version` of the plugin that validated the records.
    pub plugin: String,
    /// Records made durable (including `duplicates`).
    pub accepted: usize,
    /// Accepted records whose own id (HL7 v2 MSH-10) this source had already stored: counted as
    /// accepted, not stored again. Absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicates: usize,
    /// Records refused, with reasons.
    pub rejected: Vec<RejectedRecord>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a handled request answers.
pub(crate) struct Answer {
    /// 202 when records were accepted, 422 when none was.
    pub status: StatusCode,
    /// The answer's body.
    pub body: IngestResponse,
    /// The remembered answer of an earlier request with the same idempotency key.
    pub replayed: bool,
}

/// `POST /v1/sources/{source}/records`
#[utoipa::path(
    post,
    path = "/v1/sources/{source}/records",
    tag = "ingest",
    params(
        ("source" = String, Path, description = "Source name: lowercase letters, digits, `_`, `-` and `.` (`GET /v1/sources` lists them)", example = "patients", pattern = r"^[a-z0-9][a-z0-9_.-]{0,63}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters (a UUID, say), bare or quoted: a retry under the same key within the idempotency window gets the original answer and stores nothing (docs/configuration.md)", pattern = r"^[!#-~]{1,255}$"),
        ("Content-Encoding" = Option<Coding>, Header, description = "How the body is compressed; the size limit applies to the decoded body"),
    ),
    request_body(
        description = "Records in any shape the source's plugin reads: for the bundled plugins a JSON object, a JSON string holding one, a JSON array, NDJSON, or CSV/TSV with a header row (text/plain is sniffed), and HL7 v2 messages (ER7) for `hl7v2`. `GET /v1/sources` lists each source's content types.",
        content(
            (String = "application/json"),
            (String = "application/x-ndjson"),
            (String = "application/ndjson"),
            (String = "text/csv"),
            (String = "text/tab-separated-values"),
            (String = "text/plain"),
            (String = "application/hl7-v2"),
            (String = "x-application/hl7-v2+er7"),
        ),
    ),
    responses(
        (status = 202, description = "Accepted records are durable; every other record is in `rejected` with its reason", body = IngestResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the remembered answer of an earlier request with the same Idempotency-Key"))),
        (status = 400, description = "Malformed request: empty body, a body with no records, invalid UTF-8 (or bytes not valid in the content type's `charset`), malformed JSON, JSON nested too deep, an invalid source name or Idempotency-Key, data not valid in its Content-Encoding", body = ErrorBody),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 403, description = "Source not granted", body = ErrorBody),
        (status = 404, description = "Unknown source", body = ErrorBody),
        (status = 409, description = "A request with this Idempotency-Key, or a record with the same id (HL7 MSH-10), is still being handled", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the body timeout; the connection is closed", body = ErrorBody),
        (status = 413, description = "Body (decoded) or record count over the limit", body = ErrorBody),
        (status = 415, description = "Content type not read by the source's plugin, a `charset` or a content encoding sluice does not decode", body = ErrorBody,
            headers(("Accept-Encoding" = String, description = "The content encodings sluice decodes (with a 415 for an encoding)"))),
        (status = 422, description = "No record was acceptable (the body lists each with its reason), or the Idempotency-Key was used for other content (an error body)", body = IngestResponse),
        (status = 429, description = "Too many failed logins", body = ErrorBody, headers(("Retry-After" = String, description = "Seconds"))),
        (status = 507, description = "The disk holding the log is nearly full; nothing accepted (the stream keeps the room it needs to drain)", body = ErrorBody, headers(("Retry-After" = String, description = "Seconds"))),
        (status = 503, description = "The log or the audit log is unavailable; nothing accepted", body = ErrorBody, headers(("Retry-After" = String, description = "Seconds"))),
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn post_records(
    State(state): State<ApiState>,
    Path(source): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    ingest(state, source, client.ip(), headers, body, None).await
}

/// `POST /api_patient`: the seed's route for source `patients`.
#[utoipa::path(
    post,
    path = "/api_patient",
    tag = "seed",
    request_body(description = "The seed's body: a JSON object, or a JSON string holding one (its double encoding). The content type defaults to JSON.", content((String = "application/json"))),
    responses(
        (status = 202, description = "As for POST /v1/sources/patients/records", body = IngestResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 403, description = "Source not granted", body = ErrorBody),
        (status = 422, description = "No record was acceptable", body = IngestResponse),
    ),
    security(("basic" = []))
)]
pub async fn api_patient(
    State(state): State<ApiState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    seed_route(state, "patients", client.ip(), headers, body).await
}

/// `POST /api_admissions`: the seed's route for source `admissions`.
#[utoipa::path(
    post,
    path = "/api_admissions",
    tag = "seed",
    request_body(description = "The seed's body: a JSON object, or a JSON string holding one.", content((String = "application/json"))),
    responses(
        (status = 202, description = "As for POST /v1/sources/admissions/records", body = IngestResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 403, description = "Source not granted", body = ErrorBody),
        (status = 422, description = "No record was acceptable", body = IngestResponse),
    ),
    security(("basic" = []))
)]
pub async fn api_admissions(
    State(state): State<ApiState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    seed_route(state, "admissions", client.ip(), headers, body).await
}

/// `POST /api_lab_results`: the seed's route for source `lab_results`.
#[utoipa::path(
    post,
    path = "/api_lab_results",
    tag = "seed",
    request_body(description = "The seed's body: a JSON object, or a JSON string holding one.", content((String = "application/json"))),
    responses(
        (status = 202, description = "As for POST /v1/sources/lab_results/records", body = IngestResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 403, description = "Source not granted", body = ErrorBody),
        (status = 422, description = "No record was acceptable", body = IngestResponse),
    ),
    security(("basic" = []))
)]
pub async fn api_lab_results(
    State(state): State<ApiState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    seed_route(state, "lab_results", client.ip(), headers, body).await
}

/// The seed's routes: its source, JSON unless the request says otherwise.
async fn seed_route(state: ApiState, source: &'static str, client: IpAddr, headers: HeaderMap, body: Body) -> Response {
    ingest(state, source.to_string(), client, headers, body, Some("application/json")).await
}

/// A fresh random request id (24 hex digits).
pub(crate) fn request_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

async fn ingest(
    state: ApiState,
    source: String,
    client: IpAddr,
    headers: HeaderMap,
    body: Body,
    default_content_type: Option<&str>,
) -> Response {
    let started = Instant::now();
    let request_id = request_id();
    let received_at_us = chrono::Utc::now().timestamp_micros();
    let mut user = None;
    // A request that could not be audited is not taken (and not audited: counted instead).
    if !state.auth.audit_writable() {
        metrics::counter!(crate::metrics::REQUESTS, "route" => "ingest", "status" => "503").increment(1);
        return ApiError::AuditUnavailable.into_response();
    }
    let result =
        handle(&state, &source, client, &headers, body, default_content_type, &request_id, received_at_us, &mut user)
            .await;
    let (response, audit) = match result {
        Ok(Answer { status, body, replayed: true }) => {
            // The original answer again: nothing new was stored.
            let mut response = (status, axum::Json(body)).into_response();
            response.headers_mut().insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
            (response, Some((0, 0, Outcome::Replayed)))
        }
        Ok(Answer { status, body, replayed: false }) => {
            let outcome = if status == StatusCode::ACCEPTED { Outcome::Accepted } else { Outcome::Rejected };
            metrics::counter!(crate::metrics::ACCEPTED, "source" => source.clone()).increment(body.accepted as u64);
            metrics::counter!(crate::metrics::REJECTED, "source" => source.clone())
                .increment(body.rejected.len() as u64);
            let audit = Some((body.accepted as u64, body.rejected.len() as u64, outcome));
            ((status, axum::Json(body)).into_response(), audit)
        }
        Err(error) => {
            let outcome = match &error {
                ApiError::Auth(_) => None, // audited where it failed, with the claimed user
                ApiError::Forbidden { .. } => Some(Outcome::Forbidden),
                ApiError::Unavailable | ApiError::InsufficientStorage => Some(Outcome::Unavailable),
                _ => Some(Outcome::BadRequest),
            };
            (error.into_response(), outcome.map(|o| (0, 0, o)))
        }
    };
    if let Some((accepted, rejected, outcome)) = audit {
        state.auth.audit(AuditEntry {
            at: now_rfc3339(),
            user,
            source: Some(source.clone()),
            request_id: request_id.clone(),
            client: Some(client.to_string()),
            accepted,
            rejected,
            outcome,
            detail: None,
            attempts: 1,
        });
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!(crate::metrics::REQUESTS, "route" => "ingest", "status" => status).increment(1);
    metrics::histogram!(crate::metrics::LATENCY, "route" => "ingest").record(started.elapsed().as_secs_f64());
    let mut response = response;
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &ApiState,
    source_name: &str,
    client: IpAddr,
    headers: &HeaderMap,
    body: Body,
    default_content_type: Option<&str>,
    request_id: &str,
    received_at_us: i64,
    user: &mut Option<String>,
) -> Result<Answer, ApiError> {
    if !sluice_auth::is_valid_name(source_name) {
        return Err(ApiError::InvalidSourceName);
    }
    let principal = authenticate(state, headers, client, Some(source_name), request_id).await?;
    *user = Some(principal.user.clone());
    {
        if headers.get_all(header::CONTENT_TYPE).iter().nth(1).is_some() {
            return Err(ApiError::BadRequest(
                "the Content-Type header is given more than once; send one (the body's media type)".into(),
            ));
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .or(default_content_type)
            .unwrap_or("")
            .to_string();
        let (source, essence) =
            admit(state, source_name, &principal, &content_type, &sluice_runtime::essence(&content_type))?;
        let coding = Coding::of(headers)?;
        let idempotency_key = idempotency::key(headers)?;
        if state.disk.as_ref().is_some_and(|disk| !disk.has_room()) {
            return Err(ApiError::InsufficientStorage);
        }
        let limit = state.limits.max_body_bytes;
        // A body announced larger than the limit is refused before it is read (a client that
        // sent `Expect: 100-continue` is not asked for it). Encoded bodies are limited after
        // decoding, below.
        if matches!(coding, Coding::Identity) && body.size_hint().lower() > limit as u64 {
            return Err(ApiError::BodyTooLarge { limit });
        }
        let timeout = state.limits.body_timeout;
        let bytes = tokio::time::timeout(timeout, to_bytes(body, limit))
            .await
            .map_err(|_| ApiError::BodyTimeout { timeout })?
            .map_err(|error| body_read_error(error, limit))?;
        if bytes.is_empty()
            && !headers.contains_key(header::CONTENT_LENGTH)
            && !headers.contains_key(header::TRANSFER_ENCODING)
        {
            // An HTTP/1.0 client (or a hand-written one) that sent its body without saying how
            // long it is: the body cannot be delimited, so none was read. (Over HTTP/1.1 or 2, a
            // request without a length has no body.)
            return Err(crate::body::empty_body(crate::body::Delimited::No));
        }
        let bytes = match coding {
            Coding::Identity => bytes,
            coding if bytes.len() <= INLINE_SPLIT_BYTES => coding.decode(&bytes, limit)?.into(),
            coding => tokio::task::spawn_blocking(move || coding.decode(&bytes, limit))
                .await
                .map_err(|e| ApiError::Internal(format!("decode task failed: {e}")))??
                .into(),
        };
        // Bodies in another character set than UTF-8 are decoded here, large ones off the
        // async threads.
        let bytes = if bytes.len() <= INLINE_SPLIT_BYTES || !charset::decodes(&content_type, &bytes) {
            charset::to_utf8(bytes, &content_type, &essence, limit)?
        } else {
            let (content_type, essence) = (content_type.clone(), essence.clone());
            tokio::task::spawn_blocking(move || charset::to_utf8(bytes, &content_type, &essence, limit))
                .await
                .map_err(|e| ApiError::Internal(format!("charset task failed: {e}")))??
        };
        store(
            state,
            Submission {
                source_name,
                source: &source,
                principal: &principal,
                essence,
                bytes,
                idempotency_key,
                request_id,
                received_at_us,
            },
        )
        .await
    }
}

/// The source `principal` posts to, once it exists, is granted to them and its plugin reads
/// `essence` (the essence of `content_type`, as sent), and the content type the plugin reads
/// the body as: `essence`, or the declared name of the same media type (`application/csv` as
/// `text/csv`).
pub(crate) fn admit(
    state: &ApiState,
    source_name: &str,
    principal: &sluice_auth::Principal,
    content_type: &str,
    essence: &str,
) -> Result<(std::sync::Arc<sluice_runtime::Source>, String), ApiError> {
    let source = state.sources.get(source_name).ok_or_else(|| ApiError::UnknownSource(source_name.into()))?;
    if !principal.may_post(source_name) {
        return Err(ApiError::Forbidden { user: principal.user.clone(), source_name: source_name.into() });
    }
    let plugin = source.plugin().map_err(|_| ApiError::UnknownSource(source_name.into()))?;
    let Some(read_as) = plugin.manifest().reads(essence) else {
        let given = if content_type.is_empty() { "(none)".to_string() } else { content_type.to_string() };
        return Err(ApiError::UnsupportedContentType {
            given,
            source_name: source_name.into(),
            accepted: plugin.manifest().content_types.join(", "),
        });
    };
    let read_as = read_as.to_string();
    Ok((source, read_as))
}

/// What one submission holds, however it arrived (an HTTP request, an MLLP frame): its
/// sender and source checked, its body read and decoded.
pub(crate) struct Submission<'a> {
    /// The source's name.
    pub source_name: &'a str,
    /// The source.
    pub source: &'a std::sync::Arc<sluice_runtime::Source>,
    /// Who sends, already allowed to post to the source.
    pub principal: &'a sluice_auth::Principal,
    /// The content type's essence as the source's plugin reads it (one it declares).
    pub essence: String,
    /// The body, decoded.
    pub bytes: axum::body::Bytes,
    /// The sender's Idempotency-Key, if any.
    pub idempotency_key: Option<String>,
    /// The request's id (audit log, provenance).
    pub request_id: &'a str,
    /// When it was received, microseconds since 1970-01-01 UTC.
    pub received_at_us: i64,
}

/// Checks, splits and appends one submission: the answer once the accepted records are durable.
pub(crate) async fn store(state: &ApiState, submission: Submission<'_>) -> Result<Answer, ApiError> {
    let Submission { source_name, source, principal, essence, bytes, idempotency_key, request_id, received_at_us } =
        submission;
    let sent = check_body(&bytes, &essence, state.limits.max_json_depth)?;

    // A retry under a key already answered gets that answer; a key in use waits its turn.
    let remember = match &idempotency_key {
        None => None,
        Some(key) => {
            let claim = state.in_flight.claim(source_name, &principal.user, key).await?;
            let fingerprint = idempotency::fingerprint(&essence, &bytes);
            let answered = state.log.remembered(source_name, &principal.user, key).await.map_err(|error| {
                tracing::warn!(%error, source = source_name, "cannot look up an idempotency key");
                ApiError::Unavailable
            })?;
            if let Some(answer) = answered {
                if !idempotency::same_content(&answer.fingerprint, &fingerprint, &essence, &bytes) {
                    return Err(ApiError::IdempotencyKeyReused);
                }
                let body: IngestResponse = serde_json::from_str(&answer.response)
                    .map_err(|e| ApiError::Internal(format!("a remembered answer does not read back: {e}")))?;
                let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::ACCEPTED);
                return Ok(Answer { status, body, replayed: true });
            }
            Some((claim, key.clone(), fingerprint))
        }
    };

    let batch = Batch::single(&essence, &bytes);
    let split_source = source.clone();
    // Small bodies are split right here (tens of microseconds, no hand-off to another
    // thread); large ones, and any the plugin does not finish within the brief deadline,
    // on the blocking pool under the full call timeout.
    let briefly =
        if bytes.len() <= INLINE_SPLIT_BYTES { split_source.split_briefly(&batch).map_err(split_error)? } else { None };
    let handled = match briefly {
        Some(handled) => handled,
        None => tokio::task::spawn_blocking(move || split_source.split(&batch))
            .await
            .map_err(|e| ApiError::Internal(format!("split task failed: {e}")))?
            .map_err(split_error)?,
    };
    let split = handled.output;
    let plugin_id = handled.plugin.id();
    let mut rejected: Vec<RejectedRecord> = split
        .rejected
        .into_iter()
        .map(|r| RejectedRecord { index: r.record, reason: r.reason, field: r.field })
        .collect();
    // Every record sent is accepted or rejected by name, whatever the plugin returned.
    let accepted_indices: Vec<u32> = split.origins.iter().map(|origin| origin.record).collect();
    let rejected_indices: Vec<u32> = rejected.iter().map(|r| r.index).collect();
    let lost = unaccounted(sent, &accepted_indices, &rejected_indices);
    if !lost.is_empty() {
        tracing::warn!(
            source = source_name,
            plugin = %plugin_id,
            records = lost.len(),
            "the plugin gave no outcome for some records of a request; they are rejected"
        );
        let reason = format!(
            "the plugin `{plugin_id}` gave no outcome for this record, so it was not stored (a defect of the \
             plugin; send it again once the plugin is fixed)"
        );
        rejected.extend(lost.into_iter().map(|index| RejectedRecord { index, reason: reason.clone(), field: None }));
        rejected.sort_by_key(|r| r.index);
    }
    let count = split.records.len();
    // The limit is on the records sent, rejected ones included.
    let sent_count = count + rejected.len();
    if sent_count > state.limits.max_records {
        return Err(ApiError::TooManyRecords { count: sent_count, limit: state.limits.max_records });
    }
    let mut response = IngestResponse {
        request_id: request_id.to_string(),
        source: source_name.to_string(),
        plugin: plugin_id.clone(),
        accepted: 0,
        duplicates: 0,
        rejected,
    };
    if count == 0 && response.rejected.is_empty() {
        // `[]`, a table with only its header row: nothing to accept or reject.
        return Err(ApiError::BadRequest(
            "the body holds no records (an empty JSON array, or a CSV or TSV with only its header row); nothing was \
             stored"
                .into(),
        ));
    }
    if count == 0 {
        return Ok(Answer { status: StatusCode::UNPROCESSABLE_ENTITY, body: response, replayed: false });
    }
    let provenance = Provenance {
        source: source_name.to_string(),
        plugin: plugin_id,
        plugin_digest: handled.plugin.digest().to_string(),
        user: principal.user.clone(),
        received_at_us,
        request_id: request_id.to_string(),
    };
    // Records whose own id the source already stored are acknowledged, not appended again.
    // The claims on the ids are held until the append is answered.
    let record_ids::NewRecords { records: new_records, origins, duplicates, reused, answers, claims: _claims } =
        record_ids::take_out_stored(
            state.log.as_ref(),
            &state.in_flight,
            source_name,
            split.records,
            split.origins,
            received_at_us,
        )
        .await?;
    response.accepted = count - reused.len();
    response.duplicates = duplicates;
    if !reused.is_empty() {
        response.rejected.extend(reused.iter().map(|origin| RejectedRecord {
            index: origin.record,
            reason: record_ids::ID_REUSED.to_string(),
            field: None,
        }));
        response.rejected.sort_by_key(|r| r.index);
    }
    if response.accepted == 0 {
        return Ok(Answer { status: StatusCode::UNPROCESSABLE_ENTITY, body: response, replayed: false });
    }
    // Every record stored before: nothing to append, but an answer under an Idempotency-Key is
    // still remembered (an append of no records), so a retry replays it.
    if new_records.is_empty() && remember.is_none() {
        return Ok(Answer { status: StatusCode::ACCEPTED, body: response, replayed: false });
    }
    // The plugin's packed records become the log's run as they are: nothing is copied.
    let keys = origins.into_iter().map(|origin| origin.key).collect();
    let (content_type, payloads, ends) = new_records.into_parts();
    let records = Run::from_parts(content_type, payloads, ends, keys).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut answers = answers;
    let appended = match remember {
        None if answers.is_empty() => state.log.append(source_name, &provenance, records).await,
        None => state.log.append_remembered(source_name, &provenance, records, answers).await,
        Some((_claim, key, fingerprint)) => {
            let answer = Remembered {
                source: source_name.to_string(),
                user: principal.user.clone(),
                key,
                fingerprint,
                status: StatusCode::ACCEPTED.as_u16(),
                response: serde_json::to_string(&response).map_err(|e| ApiError::Internal(e.to_string()))?,
                at_us: received_at_us,
            };
            answers.push(answer);
            state.log.append_remembered(source_name, &provenance, records, answers).await
        }
    };
    appended.map_err(|error| {
        tracing::warn!(%error, source = source_name, "log append failed");
        ApiError::Unavailable
    })?;
    if let Some(delay) = state.answer_delay {
        let _held = HeldAnswer::new();
        tokio::time::sleep(delay).await;
    }
    Ok(Answer { status: StatusCode::ACCEPTED, body: response, replayed: false })
}

/// Counts an answer held back by fault injection while it lives (also when the request is
/// dropped during the hold).
struct HeldAnswer(metrics::Gauge);

impl HeldAnswer {
    fn new() -> Self {
        let gauge = metrics::gauge!(crate::metrics::ANSWERS_HELD);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for HeldAnswer {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// A plugin failure as the client sees it: which limit was hit, with a stable code; the full
/// error (trap message, plugin output) goes to the server's log only.
/// Why a body could not be read: over the limit (413), or cut short or malformed on the wire
/// (400: a chunked encoding that does not parse, a connection closed before the announced
/// length), which a retry of the same request may cure.
fn body_read_error(error: axum::Error, limit: usize) -> ApiError {
    if error.into_inner().downcast_ref::<http_body_util::LengthLimitError>().is_some() {
        ApiError::BodyTooLarge { limit }
    } else {
        ApiError::BadRequest(
            "the request body could not be read to its end (cut short, or a malformed chunked encoding); nothing was stored".into(),
        )
    }
}

fn split_error(error: SourceError) -> ApiError {
    use sluice_runtime::CallError;
    tracing::warn!(%error, "the plugin failed on a request");
    let (code, message) = match &error {
        SourceError::Call(CallError::Timeout { limit, .. }) => {
            ("plugin_timeout", format!("the source's plugin ran longer than its limit of {} ms", limit.as_millis()))
        }
        SourceError::Call(CallError::MemoryLimit { limit, .. }) => (
            "plugin_memory_limit",
            format!("the source's plugin needed more memory than its limit of {} MiB", limit >> 20),
        ),
        SourceError::Call(CallError::HostMemoryLimit { .. }) => {
            return ApiError::PluginBusy { reason: "the plugins together hold all the memory they may" };
        }
        SourceError::Call(CallError::Busy { .. }) => {
            return ApiError::PluginBusy { reason: "the source's plugin already runs as many calls as it may" };
        }
        SourceError::Call(CallError::Trap { .. }) => ("plugin_trap", "the source's plugin crashed".to_string()),
        SourceError::Call(CallError::OutputTooLarge { limit, .. }) => (
            "plugin_output_too_large",
            format!("the source's plugin returned more than its limit of {} MiB", limit >> 20),
        ),
        SourceError::Call(CallError::InvalidOutput { .. }) => {
            ("plugin_invalid_output", "the source's plugin returned output that breaks the plugin contract".to_string())
        }
        SourceError::Call(_) | SourceError::Unloaded(_) => {
            ("plugin_unavailable", "the source's plugin could not be run".to_string())
        }
    };
    ApiError::Plugin { code, message }
}
