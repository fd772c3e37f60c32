//! The audit log: one row per request or failed login, never record contents. Rows are written
//! by a background thread in groups (one transaction per 50 ms under load) so that auditing costs
//! a request no disk wait. [`AuthStore::flush_audit`](crate::AuthStore::flush_audit) waits for them.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde::Serialize;

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
}

enum Message {
    Entry(AuditEntry),
    Flush(Sender<()>),
}

impl AuditWriter {
    /// Starts the writer on its own connection to the database at `path`.
    pub(crate) fn start(conn: Connection) -> Self {
        let (tx, rx) = mpsc::channel();
        let writer = thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || write_loop(&conn, &rx))
            .expect("audit thread")
            .thread()
            .clone();
        Self { tx, writer }
    }

    pub(crate) fn record(&self, entry: AuditEntry) {
        let _ = self.tx.send(Message::Entry(entry));
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
fn write_loop(conn: &Connection, rx: &Receiver<Message>) {
    while let Ok(first) = rx.recv() {
        let until = Instant::now() + GATHER_FOR;
        let mut entries = Vec::new();
        let mut waiters = Vec::new();
        let mut next = Ok(first);
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
        if let Err(error) = write(conn, &entries) {
            tracing::error!(%error, count = entries.len(), "audit entries could not be written");
        }
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}

fn write(conn: &Connection, entries: &[AuditEntry]) -> rusqlite::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    conn.execute_batch("BEGIN")?;
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO audit (at, user, source, request_id, client, accepted, rejected, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for e in entries {
            insert.execute(rusqlite::params![
                e.at,
                e.user,
                e.source,
                e.request_id,
                e.client,
                e.accepted as i64,
                e.rejected as i64,
                e.outcome.as_str()
            ])?;
        }
    }
    conn.execute_batch("COMMIT")
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
        _ => Outcome::BadRequest,
    }
}
