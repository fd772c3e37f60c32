//! MLLP listeners: HL7 v2 messages over TCP, each acknowledged in original mode once it is
//! durable in the log (the point at which HTTP answers 202), through the same path as
//! `POST /v1/sources/{source}/records` with `application/hl7-v2`.
//!
//! The codes follow HL7 v2's original acknowledgement mode, so that an engine set up to the
//! standard (resend on AR, stop on AE) neither drops a message nor loops on one:
//!
//! - **AA** once the message's records are durable, or when the source already stored a message
//!   with the same control id (MSH-10) and content: a resend after a lost ACK is acknowledged
//!   again and adds no row.
//! - **AE** with an ERR naming the field when the source's plugin refuses the message's content
//!   (a value, a missing segment or field, a control id used before for another message):
//!   sending it again unchanged will not help.
//! - **AR** when the message fails the checks before the application (no MSH, bad delimiters,
//!   charset, framing, size, a message type or version not taken), when the listener's user may
//!   not post to the source, and when it could not be stored now (log or audit log
//!   unavailable, disk nearly full, the plugin busy, the same message in flight on another
//!   connection: nothing was stored, and sending it again later is safe).
//!
//! The audit log gets a row per connection (opened, closed) and per message (never contents).
//!
//! With `tls_cert`/`tls_key` the listener speaks TLS; with `tls_client_ca` too, every client
//! must present a certificate that CA signed, and its subject common name is the user the
//! connection posts as (a connection without one is refused in the handshake).

mod ack;
mod config;
mod frame;

use std::net::SocketAddr;
use std::sync::Arc;

use sluice_auth::{AuditEntry, Outcome, Principal};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
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
    let tls = config.tls().map_err(std::io::Error::other)?;
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
                let (config, state, stopped, tls) = (config.clone(), state.clone(), stopped.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    match tls {
                        None => {
                            let user = config.user.clone().unwrap_or_default();
                            connection(stream, peer, user, &config, &state, stopped).await;
                        }
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                            let stream = match handshake {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(error)) => {
                                    tracing::warn!(%peer, %error, "MLLP TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::warn!(%peer, "MLLP TLS handshake timed out");
                                    return;
                                }
                            };
                            let user = match &config.user {
                                Some(user) => user.clone(),
                                None => match client_user(&stream) {
                                    Some(user) => user,
                                    None => {
                                        tracing::warn!(%peer, "MLLP client certificate names no valid user (subject CN)");
                                        return;
                                    }
                                },
                            };
                            connection(stream, peer, user, &config, &state, stopped).await;
                        }
                    }
                    drop(slot);
                });
            }
        }
    }
    let _ = stop.send(true);
    Ok(())
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The sluice user a client certificate names: its subject's common name, when that is a valid
/// user name.
fn client_user(stream: &tokio_rustls::server::TlsStream<TcpStream>) -> Option<String> {
    let certificate = stream.get_ref().1.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    sluice_auth::is_valid_name(&name).then_some(name)
}

/// One connection posting as `user`: frames in, acknowledgements out, in order.
async fn connection(
    stream: impl AsyncRead + AsyncWrite + Unpin,
    peer: SocketAddr,
    user: String,
    config: &MllpConfig,
    state: &ApiState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let listener = Listener { config, user: &user };
    let connection_id = ingest::request_id();
    audit(state, &listener, &connection_id, peer, 0, 0, Outcome::Connected);
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = FrameReader::new(read, config.max_message.as_u64() as usize);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(config.idle_timeout, reader.next()) => next,
            _ = stopped.changed() => break,
        };
        let event = match next {
            Err(_) => {
                tracing::debug!(%peer, "MLLP connection idle: closed");
                // A frame begun and not finished is answered before the close, so the sender
                // knows what became of it.
                if let Some(event) = reader.unfinished() {
                    let reply = answer(state, &listener, peer, event).await.0;
                    let _ = send(&mut write, &reply, config.idle_timeout).await;
                }
                break;
            }
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "MLLP connection failed");
                break;
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(event))) => event,
        };
        let (reply, close) = answer(state, &listener, peer, event).await;
        if let Err(error) = send(&mut write, &reply, config.idle_timeout).await {
            tracing::debug!(%peer, %error, "MLLP acknowledgement not sent: closed");
            break;
        }
        if close {
            break;
        }
    }
    let _ = write.shutdown().await;
    audit(state, &listener, &connection_id, peer, 0, 0, Outcome::Disconnected);
}

/// Writes one acknowledgement, framed. A sender that stops reading its acknowledgements (one
/// that sets MSH-15 to `NE` and never reads, say) fills the socket's buffers, and the write
/// waits: after `timeout` it fails, and the connection is closed instead of being held forever
/// with the next message unread.
async fn send(
    write: &mut (impl AsyncWrite + Unpin),
    reply: &[u8],
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    let writing = async {
        write.write_all(&framed(reply)).await?;
        write.flush().await
    };
    match tokio::time::timeout(timeout, writing).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the sender read no acknowledgement for {}",
                humantime_serde::re::humantime::format_duration(timeout)
            ),
        )),
    }
}

/// The acknowledgement of what the reader found, and whether the connection is to be closed
/// after it.
async fn answer(state: &ApiState, listener: &Listener<'_>, peer: SocketAddr, event: Event) -> (Vec<u8>, bool) {
    match event {
        Event::Frame(message) => (handle(state, listener, peer, message).await, false),
        Event::Refused { reason, head } => (refuse(state, listener, peer, reason, &head), false),
        Event::OutOfFrame(reason) => (refuse(state, listener, peer, reason, &[]), true),
    }
}

/// A listener's configuration and the user one of its connections posts as.
struct Listener<'a> {
    config: &'a MllpConfig,
    user: &'a str,
}

/// How many messages (MSH segments) a frame holds: segments end at CR or LF, a batch's
/// FHS/BHS/BTS/FTS segments are not messages.
fn messages_in(frame: &[u8]) -> usize {
    frame.split(|&b| b == b'\r' || b == b'\n').filter(|segment| segment.trim_ascii_start().starts_with(b"MSH")).count()
}

/// Counts an acknowledgement sent, as the HTTP API counts its answers (by status).
fn count_acknowledgement(code: Code) {
    metrics::counter!(crate::metrics::REQUESTS, "route" => "mllp", "status" => ack_code_name(code)).increment(1);
}

/// An AR for a frame that cannot be taken; `head` is what was read of its start, whose MSH (when
/// it has one) the acknowledgement answers, naming its control id.
fn refuse(state: &ApiState, listener: &Listener<'_>, peer: SocketAddr, reason: String, head: &[u8]) -> Vec<u8> {
    let request_id = ingest::request_id();
    audit(state, listener, &request_id, peer, 0, 0, Outcome::BadRequest);
    count_acknowledgement(Code::Reject);
    let problem = Problem { reason, field: None, code: ErrorCode::ApplicationInternalError };
    ack::build(Header::read(head).as_ref(), Code::Reject, Some(&problem), &ack_id(&request_id), &now_hl7())
}

/// Stores one message through the API's path and acknowledges it.
async fn handle(state: &ApiState, listener: &Listener<'_>, peer: SocketAddr, message: Vec<u8>) -> Vec<u8> {
    let request_id = ingest::request_id();
    let received_at_us = chrono::Utc::now().timestamp_micros();
    let header = Header::read(&message);
    let messages = messages_in(&message);
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
        // One acknowledgement answers one message: a frame of several would be acknowledged
        // for all of them by the first one's outcome.
        Some(_) if messages > 1 => (
            Code::Reject,
            Some(Problem {
                reason: format!(
                    "the frame holds {messages} messages; MLLP carries one message per frame, each acknowledged \
                     on its own: nothing was stored, send them one per frame"
                ),
                field: Some("MSH".into()),
                code: ErrorCode::ApplicationInternalError,
            }),
            (0, 0),
            Outcome::BadRequest,
        ),
        Some(_) => match store(state, listener, message, &request_id, received_at_us).await {
            Ok(answer) => {
                // Counted as the HTTP API counts its records.
                let source = listener.config.source.clone();
                metrics::counter!(crate::metrics::ACCEPTED, "source" => source.clone())
                    .increment(answer.body.accepted as u64);
                metrics::counter!(crate::metrics::REJECTED, "source" => source)
                    .increment(answer.body.rejected.len() as u64);
                outcome_of(answer)
            }
            Err(error) => error_of(error),
        },
    };
    audit(state, listener, &request_id, peer, counts.0, counts.1, outcome);
    count_acknowledgement(code);
    ack::build(header.as_ref(), code, problem.as_ref(), &ack_id(&request_id), &now_hl7())
}

type Acknowledgement = (Code, Option<Problem>, (u64, u64), Outcome);

async fn store(
    state: &ApiState,
    listener: &Listener<'_>,
    message: Vec<u8>,
    request_id: &str,
    received_at_us: i64,
) -> Result<ingest::Answer, ApiError> {
    if !state.auth.audit_writable() {
        return Err(ApiError::AuditUnavailable);
    }
    let config = listener.config;
    let grants = {
        let auth = state.auth.clone();
        let user = listener.user.to_string();
        let grants = tokio::task::spawn_blocking(move || auth.list_grants(Some(&user)))
            .await
            .map_err(|e| ApiError::Internal(format!("grant lookup failed: {e}")))?;
        match grants {
            Ok(grants) => grants,
            // A certificate naming no account, or a listener user since removed: nothing granted.
            Err(sluice_auth::Error::NoSuchUser(_)) => Vec::new(),
            Err(_) => return Err(ApiError::Unavailable),
        }
    };
    let principal =
        Principal { user: listener.user.to_string(), sources: grants.into_iter().map(|grant| grant.source).collect() };
    let (source, essence) = ingest::admit(state, &config.source, &principal, HL7_V2, HL7_V2)?;
    if state.disk.as_ref().is_some_and(|disk| !disk.has_room()) {
        return Err(ApiError::InsufficientStorage);
    }
    let submission = Submission {
        source_name: &config.source,
        source: &source,
        principal: &principal,
        essence,
        bytes: message.into(),
        idempotency_key: None,
        request_id,
        received_at_us,
    };
    ingest::store(state, submission).await
}

/// AA when every message of the frame was accepted (or stored before); else the first
/// rejection: AR when the message failed the checks before the application (it could not be
/// read, or its type or version is not taken), AE when the plugin refused its content.
fn outcome_of(answer: ingest::Answer) -> Acknowledgement {
    let body = answer.body;
    let counts = (body.accepted as u64, body.rejected.len() as u64);
    match body.rejected.first() {
        None => (Code::Accept, None, counts, Outcome::Accepted),
        Some(rejected) => {
            let not_taken =
                matches!(rejected.field.as_deref(), Some("MSH" | "MSH-1" | "MSH-2" | "MSH-9" | "MSH-12" | "MSH-18"));
            let code = ErrorCode::for_rejection(rejected.field.as_deref(), &rejected.reason);
            let problem = Problem { reason: rejected.reason.clone(), field: rejected.field.clone(), code };
            let outcome = if body.accepted > 0 { Outcome::Accepted } else { Outcome::Rejected };
            (if not_taken { Code::Reject } else { Code::Error }, Some(problem), counts, outcome)
        }
    }
}

/// AR: the message was not stored, for a cause outside its content (sending it again later is
/// safe when the cause is transient, and the reason says so).
fn error_of(error: ApiError) -> Acknowledgement {
    let transient = matches!(
        error,
        ApiError::Unavailable
            | ApiError::AuditUnavailable
            | ApiError::InsufficientStorage
            | ApiError::PluginBusy { .. }
            | ApiError::RecordInFlight
    );
    let (outcome, reason) = match &error {
        _ if transient => (Outcome::Unavailable, format!("not stored, send it again: {error}")),
        ApiError::Forbidden { .. } => (Outcome::Forbidden, error.to_string()),
        _ => (Outcome::BadRequest, error.to_string()),
    };
    let problem = Problem { reason, field: None, code: ErrorCode::ApplicationInternalError };
    (Code::Reject, Some(problem), (0, 0), outcome)
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
    listener: &Listener<'_>,
    request_id: &str,
    peer: SocketAddr,
    accepted: u64,
    rejected: u64,
    outcome: Outcome,
) {
    state.auth.audit(AuditEntry {
        at: now_rfc3339(),
        user: Some(listener.user.to_string()),
        source: Some(listener.config.source.clone()),
        request_id: request_id.to_string(),
        client: Some(peer.to_string()),
        accepted,
        rejected,
        outcome,
        detail: None,
        attempts: 1,
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::*;

    /// A sender that reads no acknowledgement: the write gives up after the timeout instead of
    /// holding the connection forever.
    #[tokio::test]
    async fn an_acknowledgement_nobody_reads_times_out() {
        let (mut server, client) = tokio::io::duplex(64);
        let ack = vec![b'A'; 200];
        let error = send(&mut server, &ack, Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(error.to_string(), "the sender read no acknowledgement for 200ms");

        // Read, it is sent whole.
        let (mut server, mut client_reading) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client_reading.read_to_end(&mut got).await.map(|_| got)
        });
        send(&mut server, &ack, Duration::from_secs(300)).await.unwrap();
        drop(server);
        assert_eq!(reader.await.unwrap().unwrap(), framed(&ack));
        drop(client);
    }
}
