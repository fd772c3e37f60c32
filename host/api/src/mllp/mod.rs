//! MLLP listeners: HL7 v2 messages over TCP, each acknowledged in original mode once it is
//! durable in the log (the point at which HTTP answers 202), through the same path as
//! `POST /v1/sources/{source}/records` with `application/hl7-v2`.
//!
//! - **AA** once the message's records are durable, or when the source already stored a message
//!   with the same control id (MSH-10): a resend after a lost ACK is acknowledged again and adds
//!   no row.
//! - **AE** with an ERR naming the field when the source's plugin refuses the message's content,
//!   and when it could not be stored now (log or audit log unavailable, disk nearly full, the
//!   plugin busy, the same message in flight on another connection): nothing was stored and
//!   sending it again is safe.
//! - **AR** when the message cannot be read (no MSH, bad delimiters, charset, framing, size)
//!   or the listener's user may not post to the source.
//!
//! The audit log gets a row per connection (opened, closed) and per message (never contents).

mod ack;
mod config;
mod frame;

use std::net::SocketAddr;
use std::sync::Arc;

use sluice_auth::{AuditEntry, Outcome, Principal};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

pub use config::{MllpConfig, MllpConfigError};
pub use frame::framed;

use crate::auth::now_rfc3339;
use crate::error::ApiError;
use crate::ingest::{self, Submission};
use crate::state::ApiState;
use ack::{Code, ErrorCode, Header, Problem};
use frame::{Event, FrameReader};

/// The content type an MLLP frame is handed to the source's plugin as.
const HL7_V2: &str = "application/hl7-v2";

/// Serves `config`'s listener until `shutdown` resolves; connections then finish the message
/// in hand and close.
pub async fn serve_mllp(
    listener: std::net::TcpListener,
    config: MllpConfig,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "MLLP accept failed");
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, limit = config.max_connections, "MLLP connection refused: at the connection limit");
                    drop(stream);
                    continue;
                };
                let (config, state, stopped) = (config.clone(), state.clone(), stopped.clone());
                tokio::spawn(async move {
                    connection(stream, peer, &config, &state, stopped).await;
                    drop(slot);
                });
            }
        }
    }
    let _ = stop.send(true);
    Ok(())
}

/// One connection: frames in, acknowledgements out, in order.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    config: &MllpConfig,
    state: &ApiState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let connection_id = ingest::request_id();
    audit(state, config, &connection_id, peer, 0, 0, Outcome::Connected);
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader::new(read, config.max_message.as_u64() as usize);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(config.idle_timeout, reader.next()) => next,
            _ = stopped.changed() => break,
        };
        let event = match next {
            Err(_) => {
                tracing::debug!(%peer, "MLLP connection idle: closed");
                break;
            }
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "MLLP connection failed");
                break;
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(event))) => event,
        };
        let (reply, close) = match event {
            Event::Frame(message) => (handle(state, config, peer, message).await, false),
            Event::Refused(reason) => (refuse(state, config, peer, reason), false),
            Event::OutOfFrame(reason) => (refuse(state, config, peer, reason), true),
        };
        if write.write_all(&framed(&reply)).await.is_err() || close {
            break;
        }
    }
    let _ = write.shutdown().await;
    audit(state, config, &connection_id, peer, 0, 0, Outcome::Disconnected);
}

/// An AR for what is not a message.
fn refuse(state: &ApiState, config: &MllpConfig, peer: SocketAddr, reason: String) -> Vec<u8> {
    let request_id = ingest::request_id();
    audit(state, config, &request_id, peer, 0, 0, Outcome::BadRequest);
    let problem = Problem { reason, field: None, code: ErrorCode::ApplicationInternalError };
    ack::build(None, Code::Reject, Some(&problem), &ack_id(&request_id), &now_hl7())
}

/// Stores one message through the API's path and acknowledges it.
async fn handle(state: &ApiState, config: &MllpConfig, peer: SocketAddr, message: Vec<u8>) -> Vec<u8> {
    let request_id = ingest::request_id();
    let received_at_us = chrono::Utc::now().timestamp_micros();
    let header = Header::read(&message);
    let (code, problem, counts, outcome) = match &header {
        None => (
            Code::Reject,
            Some(Problem {
                reason: "the frame does not start with an MSH segment".into(),
                field: Some("MSH".into()),
                code: ErrorCode::RequiredFieldMissing,
            }),
            (0, 0),
            Outcome::BadRequest,
        ),
        Some(_) => match store(state, config, message, &request_id, received_at_us).await {
            Ok(answer) => outcome_of(answer),
            Err(error) => error_of(error),
        },
    };
    audit(state, config, &request_id, peer, counts.0, counts.1, outcome);
    metrics::counter!(crate::metrics::REQUESTS, "route" => "mllp", "status" => ack_code_name(code)).increment(1);
    ack::build(header.as_ref(), code, problem.as_ref(), &ack_id(&request_id), &now_hl7())
}

type Acknowledgement = (Code, Option<Problem>, (u64, u64), Outcome);

async fn store(
    state: &ApiState,
    config: &MllpConfig,
    message: Vec<u8>,
    request_id: &str,
    received_at_us: i64,
) -> Result<ingest::Answer, ApiError> {
    if !state.auth.audit_writable() {
        return Err(ApiError::AuditUnavailable);
    }
    let grants = {
        let auth = state.auth.clone();
        let user = config.user.clone();
        tokio::task::spawn_blocking(move || auth.list_grants(Some(&user)))
            .await
            .map_err(|e| ApiError::Internal(format!("grant lookup failed: {e}")))?
            .map_err(|_| ApiError::Unavailable)?
    };
    let principal =
        Principal { user: config.user.clone(), sources: grants.into_iter().map(|grant| grant.source).collect() };
    if !principal.may_post(&config.source) {
        return Err(ApiError::Forbidden { user: config.user.clone(), source_name: config.source.clone() });
    }
    let source = state.sources.get(&config.source).ok_or_else(|| ApiError::UnknownSource(config.source.clone()))?;
    let plugin = source.plugin().map_err(|_| ApiError::UnknownSource(config.source.clone()))?;
    if !plugin.manifest().accepts(HL7_V2) {
        return Err(ApiError::UnsupportedContentType {
            given: HL7_V2.into(),
            source_name: config.source.clone(),
            accepted: plugin.manifest().content_types.join(", "),
        });
    }
    if state.disk.as_ref().is_some_and(|disk| !disk.has_room()) {
        return Err(ApiError::InsufficientStorage);
    }
    let submission = Submission {
        source_name: &config.source,
        source: &source,
        principal: &principal,
        essence: HL7_V2.into(),
        bytes: message.into(),
        idempotency_key: None,
        request_id,
        received_at_us,
    };
    ingest::store(state, submission).await
}

/// AA when every message of the frame was accepted (or stored before); else the first
/// rejection: AR when the message could not be read, AE when its content was refused.
fn outcome_of(answer: ingest::Answer) -> Acknowledgement {
    let body = answer.body;
    let counts = (body.accepted as u64, body.rejected.len() as u64);
    match body.rejected.first() {
        None => (Code::Accept, None, counts, Outcome::Accepted),
        Some(rejected) => {
            let unreadable = matches!(rejected.field.as_deref(), Some("MSH" | "MSH-1" | "MSH-2" | "MSH-18"));
            let code = ErrorCode::for_rejection(rejected.field.as_deref(), &rejected.reason);
            let problem = Problem { reason: rejected.reason.clone(), field: rejected.field.clone(), code };
            let outcome = if body.accepted > 0 { Outcome::Accepted } else { Outcome::Rejected };
            (if unreadable { Code::Reject } else { Code::Error }, Some(problem), counts, outcome)
        }
    }
}

/// AE for what may succeed when sent again (nothing was stored), AR for the rest.
fn error_of(error: ApiError) -> Acknowledgement {
    let transient = matches!(
        error,
        ApiError::Unavailable
            | ApiError::AuditUnavailable
            | ApiError::InsufficientStorage
            | ApiError::PluginBusy { .. }
            | ApiError::RecordInFlight
    );
    let (code, outcome, reason) = match &error {
        _ if transient => (Code::Error, Outcome::Unavailable, format!("not stored, send it again: {error}")),
        ApiError::Forbidden { .. } => (Code::Reject, Outcome::Forbidden, error.to_string()),
        _ => (Code::Reject, Outcome::BadRequest, error.to_string()),
    };
    let problem = Problem { reason, field: None, code: ErrorCode::ApplicationInternalError };
    (code, Some(problem), (0, 0), outcome)
}

fn ack_code_name(code: Code) -> &'static str {
    match code {
        Code::Accept => "AA",
        Code::Error => "AE",
        Code::Reject => "AR",
    }
}

/// An acknowledgement's own control id: the request id, cut to MSH-10's 20 characters.
fn ack_id(request_id: &str) -> String {
    request_id.chars().take(20).collect()
}

fn now_hl7() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M%S+0000").to_string()
}

fn audit(
    state: &ApiState,
    config: &MllpConfig,
    request_id: &str,
    peer: SocketAddr,
    accepted: u64,
    rejected: u64,
    outcome: Outcome,
) {
    state.auth.audit(AuditEntry {
        at: now_rfc3339(),
        user: Some(config.user.clone()),
        source: Some(config.source.clone()),
        request_id: request_id.to_string(),
        client: Some(peer.to_string()),
        accepted,
        rejected,
        outcome,
    });
}
