//! The audit log: one row per request or failed login, never record contents. Rows are written
//! by a background thread in groups (one transaction per 50 ms under load) so that auditing costs
//! a request no disk wait. [`AuthStore::flush_audit`](crate::AuthStore::flush_audit) waits for them.
//!
//! A row is never dropped: when the database cannot be written (disk full, locked by another
//! process) the rows stay queued and are written again until they are, and meanwhile
//! [`AuthStore::audit_writable`](crate::AuthStore::audit_writable) says no, so that the API
//! refuses requests it could not audit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::db::{Conn, Value};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Records accepted (some may have been rejected).
    Accepted,
    /// Every record was rejected.
    Rejected,
    /// Authentication failed.
    AuthFailed,
    /// Authenticated, but not granted the source.
    Forbidden,
    /// The request was malformed (size, type, encoding...).
    BadRequest,
    /// The log could not take the records.
    Unavailable,
    /// A retry under an idempotency key: the original answer was sent again, nothing stored.
    Replayed,
    /// An MLLP connection was opened (its row's request id names the connection).
    Connected,
    /// An MLLP connection was closed.
    Disconnected,
}

impl Outcome {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::AuthFailed => "auth_failed",
            Self::Forbidden => "forbidden",
            Self::BadRequest => "bad_request",
            Self::Unavailable => "unavailable",
            Self::Replayed => "replayed",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
        }
    }
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// RFC 3339 time.
    pub at: String,
    /// The user, when known (the claimed name for failed logins).
    pub user: Option<String>,
    /// The source posted to.
    pub source: Option<String>,
    /// Request id (also in the response).
    pub request_id: String,
    /// Client address.
    pub client: Option<String>,
    /// Records accepted.
    pub accepted: u64,
    /// Records rejected.
    pub rejected: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// Sends entries to the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct AuditWriter {
    tx: Sender<Message>,
    /// The writer thread, unparked by a flush (entries never wake it: see `write_loop`).
    writer: thread::Thread,
    health: Arc<Health>,
}

/// Whether rows are being written.
#[derive(Debug, Default)]
struct Health {
    /// Rows queued and not yet written.
    pending: AtomicUsize,
    /// The last write failed.
    failing: AtomicBool,
}

/// Queued rows beyond which requests are refused even while writes succeed (the writer is far
/// behind).
const MAX_PENDING: usize = 100_000;

enum Message {
    Entry(AuditEntry),
    Flush(Sender<()>),
}

impl AuditWriter {
    /// Starts the writer on its own connection to the database at `path`.
    pub(crate) fn start(mut conn: Conn) -> Self {
        let (tx, rx) = mpsc::channel();
        let health = Arc::new(Health::default());
        let writer_health = health.clone();
        let writer = thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || write_loop(&mut conn, &rx, &writer_health))
            .expect("audit thread")
            .thread()
            .clone();
        Self { tx, writer, health }
    }

    pub(crate) fn record(&self, entry: AuditEntry) {
        self.health.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(Message::Entry(entry)).is_err() {
            self.health.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether the rows are being written (the last write succeeded and the queue is short).
    pub(crate) fn writable(&self) -> bool {
        !self.health.failing.load(Ordering::SeqCst) && self.health.pending.load(Ordering::SeqCst) < MAX_PENDING
    }

    /// Rows queued and not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.health.pending.load(Ordering::SeqCst)
    }

    /// Waits until every entry sent so far is written.
    pub(crate) fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Message::Flush(tx)).is_ok() {
            self.writer.unpark();
            let _ = rx.recv();
        }
    }
}

/// How long the writer gathers entries after the first of a group before writing them in one
/// transaction: under load that is one commit (one fsync) per window instead of one per request.
const GATHER_FOR: Duration = Duration::from_millis(50);

/// The most entries written in one transaction.
const MAX_GROUP: usize = 1000;

/// Waits for an entry, gathers for [`GATHER_FOR`], writes the group; until every sender is
/// gone. While gathering the thread sleeps (parked) instead of waiting on the channel, so that
/// sending an entry does not wake it: under load that was a thread wake-up per request.
fn write_loop(conn: &mut Conn, rx: &Receiver<Message>, health: &Health) {
    // Rows a failed write left, written first next time.
    let mut carried: Vec<AuditEntry> = Vec::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        let first = if carried.is_empty() {
            match rx.recv() {
                Ok(first) => Ok(first),
                Err(_) => return,
            }
        } else {
            // Wait before writing again, taking what arrives meanwhile.
            thread::park_timeout(backoff);
            rx.try_recv()
        };
        let until = Instant::now() + GATHER_FOR;
        let mut entries = std::mem::take(&mut carried);
        let mut waiters = Vec::new();
        let mut next = first;
        loop {
            match next {
                Ok(Message::Entry(e)) => entries.push(e),
                // Everything sent before a flush is already here: write it now.
                Ok(Message::Flush(w)) => waiters.push(w),
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    thread::park_timeout(left);
                }
            }
            if entries.len() >= MAX_GROUP || !waiters.is_empty() {
                break;
            }
            next = rx.try_recv();
        }
        match write(conn, &entries) {
            Ok(()) => {
                health.pending.fetch_sub(entries.len(), Ordering::SeqCst);
                health.failing.store(false, Ordering::SeqCst);
                backoff = Duration::from_millis(100);
            }
            Err(error) => {
                if !health.failing.swap(true, Ordering::SeqCst) {
                    tracing::error!(%error, queued = entries.len(), "audit rows cannot be written; requests are refused until they can");
                }
                carried = entries;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}

fn write(conn: &mut Conn, entries: &[AuditEntry]) -> crate::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    conn.transaction(|tx| {
        for e in entries {
            tx.execute(
                r#"INSERT INTO audit (at, "user", source, request_id, client, accepted, rejected, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"#,
                &[
                    e.at.as_str().into(),
                    e.user.clone().into(),
                    e.source.clone().into(),
                    e.request_id.as_str().into(),
                    e.client.clone().into(),
                    Value::from(e.accepted as i64),
                    Value::from(e.rejected as i64),
                    e.outcome.as_str().into(),
                ],
            )?;
        }
        Ok(())
    })
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Parses a stored outcome name (unknown names read as `BadRequest`).
pub(crate) fn outcome_from_str(text: &str) -> Outcome {
    match text {
        "accepted" => Outcome::Accepted,
        "rejected" => Outcome::Rejected,
        "auth_failed" => Outcome::AuthFailed,
        "forbidden" => Outcome::Forbidden,
        "unavailable" => Outcome::Unavailable,
        "replayed" => Outcome::Replayed,
        "connected" => Outcome::Connected,
        "disconnected" => Outcome::Disconnected,
        _ => Outcome::BadRequest,
    }
}
