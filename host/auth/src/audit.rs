//! The audit log: one row per request or failed login, never record contents. Rows are written
//! by a background thread in groups (one transaction per 50 ms under load) so that auditing costs
//! a request no disk wait. [`AuthStore::flush_audit`](crate::AuthStore::flush_audit) waits for them.
//!
//! A row is never dropped: when the database cannot be written (disk full, locked by another
//! process) the rows stay queued and are written again until they are, and meanwhile
//! [`AuthStore::audit_writable`](crate::AuthStore::audit_writable) says no, so that the API
//! refuses requests it could not audit.
//!
//! The log stays bounded: failed logins that repeat (same client and reason, and for a wrong
//! password the same user) within the failure window are counted on one row (`attempts`)
//! instead of a row each, so that a flood of bad or missing credentials adds rows at the rate of
//! its distinct failures; and rows older than [`AuthPolicy::audit_retention`] are deleted while
//! the writer works.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::db::{Conn, Value};
use crate::limiter::AuthPolicy;

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
    /// Every outcome, in the order of the declaration.
    pub const ALL: [Outcome; 9] = [
        Self::Accepted,
        Self::Rejected,
        Self::AuthFailed,
        Self::Forbidden,
        Self::BadRequest,
        Self::Unavailable,
        Self::Replayed,
        Self::Connected,
        Self::Disconnected,
    ];

    /// The outcome stored as `name`, if there is one.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|outcome| outcome.as_str() == name)
    }

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
    /// Why, where the outcome alone does not say (a failed login's reason: `bad_password`,
    /// `missing`, `rate_limited`...).
    pub detail: Option<String>,
    /// How many identical requests this row stands for: 1, or for a failed login the repeats
    /// counted on it within the failure window (the row's time is the last one's).
    pub attempts: u64,
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
    /// Starts the writer on its own connection to the database, under `policy`'s failure window
    /// (repeated failed logins) and audit retention.
    pub(crate) fn start(mut conn: Conn, policy: &AuthPolicy) -> Self {
        let (tx, rx) = mpsc::channel();
        let health = Arc::new(Health::default());
        let writer_health = health.clone();
        let mut upkeep = Upkeep {
            repeats: Repeats::new(policy.failure_window),
            retention: policy.audit_retention,
            trimmed_at: None,
        };
        let writer = thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || write_loop(&mut conn, &rx, &writer_health, &mut upkeep))
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

/// What the writer does besides writing: counting repeated failed logins on one row, and
/// deleting rows past the retention.
struct Upkeep {
    repeats: Repeats,
    retention: Duration,
    /// When rows past the retention were last deleted (`None`: not yet).
    trimmed_at: Option<Instant>,
}

/// How often rows past the retention are looked for while the writer works.
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// The most rows one trim deletes (in statements of [`TRIM_BATCH`]), so that a first trim of a
/// long history does not hold the writer (and the requests waiting to be audited) for long.
const TRIM_MAX: usize = 100_000;
const TRIM_BATCH: usize = 10_000;

/// Waits for an entry, gathers for [`GATHER_FOR`], writes the group; until every sender is
/// gone. While gathering the thread sleeps (parked) instead of waiting on the channel, so that
/// sending an entry does not wake it: under load that was a thread wake-up per request.
fn write_loop(conn: &mut Conn, rx: &Receiver<Message>, health: &Health, upkeep: &mut Upkeep) {
    // Rows a failed write left, written first next time, and how many of them came from the
    // channel (counted in `pending`; a row of repeats is not).
    let mut carried: Vec<AuditEntry> = Vec::new();
    let mut carried_queued = 0;
    let mut backoff = Duration::from_millis(100);
    loop {
        let first = if !carried.is_empty() {
            // Wait before writing again, taking what arrives meanwhile.
            thread::park_timeout(backoff);
            rx.try_recv()
        } else if upkeep.repeats.is_empty() {
            match rx.recv() {
                Ok(first) => Ok(first),
                Err(_) => return,
            }
        } else {
            // Repeats are being counted: wake to write their row when their window ends.
            match rx.recv_timeout(upkeep.repeats.next_due().saturating_duration_since(Instant::now())) {
                Ok(first) => Ok(first),
                Err(mpsc::RecvTimeoutError::Timeout) => Err(mpsc::TryRecvError::Empty),
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(mpsc::TryRecvError::Disconnected),
            }
        };
        let until = Instant::now() + GATHER_FOR;
        let mut entries = std::mem::take(&mut carried);
        let mut queued = std::mem::take(&mut carried_queued);
        let mut waiters = Vec::new();
        let mut closed = false;
        let mut next = first;
        loop {
            match next {
                Ok(Message::Entry(e)) => match upkeep.repeats.admit(e, Instant::now()) {
                    Admit::Write(e, ended) => {
                        entries.extend(ended.map(|ended| *ended));
                        entries.push(*e);
                        queued += 1;
                    }
                    // Counted on the row of its first: nothing to write now.
                    Admit::Counted => {
                        health.pending.fetch_sub(1, Ordering::SeqCst);
                    }
                },
                // Everything sent before a flush is already here: write it now.
                Ok(Message::Flush(w)) => waiters.push(w),
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
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
        // Rows of repeats whose window ended; all of them before a flush or at the end.
        entries.extend(upkeep.repeats.due(Instant::now(), !waiters.is_empty() || closed));
        match write(conn, &entries) {
            Ok(()) => {
                health.pending.fetch_sub(queued, Ordering::SeqCst);
                health.failing.store(false, Ordering::SeqCst);
                backoff = Duration::from_millis(100);
                // Only a process that audits (the server) keeps the retention: an admin command
                // that opens the store, reads it and closes it must not delete rows by its own
                // configuration, which may not be the server's.
                if !entries.is_empty() {
                    upkeep.trim(conn);
                }
            }
            Err(error) => {
                if !health.failing.swap(true, Ordering::SeqCst) {
                    tracing::error!(%error, queued = entries.len(), "audit rows cannot be written; requests are refused until they can");
                }
                carried = entries;
                carried_queued = queued;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}

impl Upkeep {
    /// Deletes rows past the retention, at most once per [`TRIM_EVERY`] (`0s`: keep them all).
    fn trim(&mut self, conn: &mut Conn) {
        if self.retention.is_zero() || self.trimmed_at.is_some_and(|at| at.elapsed() < TRIM_EVERY) {
            return;
        }
        self.trimmed_at = Some(Instant::now());
        match trim(conn, self.retention, chrono::Utc::now()) {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "audit rows past auth.audit_retention deleted"),
            Err(error) => tracing::warn!(%error, "cannot delete audit rows past auth.audit_retention"),
        }
    }
}

/// Deletes up to [`TRIM_MAX`] rows older than `retention` before `now`; how many it deleted.
fn trim(conn: &mut Conn, retention: Duration, now: chrono::DateTime<chrono::Utc>) -> crate::Result<u64> {
    let Some(cutoff) = chrono::TimeDelta::from_std(retention).ok().and_then(|span| now.checked_sub_signed(span)) else {
        return Ok(0);
    };
    // Stored times are all RFC 3339 in UTC with microseconds, so text order is time order.
    let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut deleted = 0;
    while deleted < TRIM_MAX as u64 {
        let batch = conn.execute(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 ORDER BY at LIMIT ?2)",
            &[cutoff.as_str().into(), Value::from(TRIM_BATCH as i64)],
        )?;
        deleted += batch;
        if batch < TRIM_BATCH as u64 {
            break;
        }
    }
    Ok(deleted)
}

/// Failed logins being counted on the row of their first, per client and reason (and user, for
/// a wrong password), each for one failure window from that first.
#[derive(Debug)]
struct Repeats {
    window: Duration,
    open: HashMap<RepeatKey, Repeat>,
}

/// Client address, user (for a wrong password or a lock), reason.
type RepeatKey = (Option<String>, Option<String>, Option<String>);

#[derive(Debug)]
struct Repeat {
    since: Instant,
    /// The latest repeat, and how many came after the first (written when the window ends).
    last: Option<AuditEntry>,
    count: u64,
}

/// What becomes of an entry: written now (with the rows of repeats whose window it ended), or
/// counted on an earlier row.
enum Admit {
    Write(Box<AuditEntry>, Option<Box<AuditEntry>>),
    Counted,
}

/// Distinct failures counted at once, beyond which every count is written and forgotten.
const MAX_REPEATS: usize = 10_000;

impl Repeats {
    fn new(window: Duration) -> Self {
        Self { window, open: HashMap::new() }
    }

    fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// When the first open window ends.
    fn next_due(&self) -> Instant {
        self.open.values().map(|r| r.since + self.window).min().unwrap_or_else(Instant::now)
    }

    fn admit(&mut self, entry: AuditEntry, now: Instant) -> Admit {
        if entry.outcome != Outcome::AuthFailed || self.window.is_zero() {
            return Admit::Write(Box::new(entry), None);
        }
        // Not keyed by what a client chooses freely (the source in the path, a name in a refused
        // attempt), or varying it would make every request a row again; a password checked and
        // found wrong (or a lock met) keeps its user, so the accounts tried stay on record
        // (those are bounded by the per-client failure limit).
        let user = match entry.detail.as_deref() {
            Some("bad_password" | "locked") => entry.user.clone(),
            _ => None,
        };
        let key = (entry.client.clone(), user, entry.detail.clone());
        match self.open.get_mut(&key) {
            Some(repeat) if now.duration_since(repeat.since) < self.window => {
                repeat.count += 1;
                repeat.last = Some(entry);
                Admit::Counted
            }
            _ => {
                let ended = self.open.remove(&key).and_then(Repeat::row).map(Box::new);
                if self.open.len() >= MAX_REPEATS {
                    self.open.clear();
                }
                self.open.insert(key, Repeat { since: now, last: None, count: 0 });
                Admit::Write(Box::new(entry), ended)
            }
        }
    }

    /// Rows of the repeats whose window has ended (or of all, when `all`), forgetting them.
    fn due(&mut self, now: Instant, all: bool) -> Vec<AuditEntry> {
        let ended: Vec<RepeatKey> = self
            .open
            .iter()
            .filter(|(_, repeat)| all || now.duration_since(repeat.since) >= self.window)
            .map(|(key, _)| key.clone())
            .collect();
        ended.iter().filter_map(|key| self.open.remove(key).and_then(Repeat::row)).collect()
    }
}

impl Repeat {
    /// The row of the repeats after the first, if there were any.
    fn row(self) -> Option<AuditEntry> {
        self.last.map(|last| AuditEntry { attempts: self.count, ..last })
    }
}

fn write(conn: &mut Conn, entries: &[AuditEntry]) -> crate::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    conn.transaction(|tx| {
        for e in entries {
            tx.execute(
                r#"INSERT INTO audit (at, "user", source, request_id, client, accepted, rejected, outcome, detail, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"#,
                &[
                    e.at.as_str().into(),
                    e.user.clone().into(),
                    e.source.clone().into(),
                    e.request_id.as_str().into(),
                    e.client.clone().into(),
                    Value::from(e.accepted as i64),
                    Value::from(e.rejected as i64),
                    e.outcome.as_str().into(),
                    e.detail.clone().into(),
                    Value::from(e.attempts as i64),
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
