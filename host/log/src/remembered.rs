//! Answers remembered under an idempotency key (the `Idempotency-Key` request header of the IETF
//! httpapi draft): written in the same atomic write as the records they answered for, so that a
//! sender who lost the answer (timeout, connection cut, sluice killed after the commit) and
//! retries gets the original answer again and stores nothing new, also across restarts.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::LogError;

/// How long an answer is remembered by default: a day, as most APIs that take idempotency keys
/// do, far longer than any sender's retry schedule.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// One remembered answer. A key belongs to one user and one source: another user or source
/// using the same key is another request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// The source posted to.
    pub source: String,
    /// The submitting user.
    pub user: String,
    /// The sender's `Idempotency-Key`.
    pub key: String,
    /// Hex SHA-256 of what was sent (content type and decoded body): the same key with other
    /// content is refused, not answered with this.
    pub fingerprint: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// The answer's JSON body.
    pub response: String,
    /// When the records were appended, in microseconds since 1970-01-01 UTC.
    pub at_us: i64,
}

impl Remembered {
    /// Whether this answer is still remembered at `now_us`, with answers kept for `window`.
    pub fn is_live(&self, now_us: i64, window: Duration) -> bool {
        now_us.saturating_sub(self.at_us) < i64::try_from(window.as_micros()).unwrap_or(i64::MAX)
    }

    /// The log key of this answer: source, user and key, each length-prefixed so that no two
    /// triples share one.
    pub fn log_key(source: &str, user: &str, key: &str) -> String {
        format!("{}:{source}{}:{user}{key}", source.len(), user.len())
    }
}

/// The SQLite table of remembered answers (in the spool's file, or in the Kafka log's index).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS remembered (
    source      TEXT NOT NULL,
    user        TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    response    TEXT NOT NULL,
    at_us       INTEGER NOT NULL,
    PRIMARY KEY (source, user, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS remembered_at ON remembered (at_us);
";

/// Stores `answer` (replacing an expired one under the same key).
pub(crate) fn insert(conn: &Connection, answer: &Remembered) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO remembered (source, user, key, fingerprint, status, response, at_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        answer.source,
        answer.user,
        answer.key,
        answer.fingerprint,
        answer.status,
        answer.response,
        answer.at_us
    ])?;
    Ok(())
}

/// The answer stored under (`source`, `user`, `key`), if it is still live.
pub(crate) fn get(
    conn: &Connection,
    source: &str,
    user: &str,
    key: &str,
    window: Duration,
) -> rusqlite::Result<Option<Remembered>> {
    let answer = conn
        .prepare_cached(
            "SELECT fingerprint, status, response, at_us FROM remembered WHERE source = ?1 AND user = ?2 AND key = ?3",
        )?
        .query_row(params![source, user, key], |row| {
            Ok(Remembered {
                source: source.to_string(),
                user: user.to_string(),
                key: key.to_string(),
                fingerprint: row.get(0)?,
                status: row.get(1)?,
                response: row.get(2)?,
                at_us: row.get(3)?,
            })
        })
        .optional()?;
    Ok(answer.filter(|a| a.is_live(now_us(), window)))
}

/// Forgets the answers older than `window`.
pub(crate) fn trim(conn: &Connection, window: Duration) -> rusqlite::Result<usize> {
    let cutoff = now_us().saturating_sub(i64::try_from(window.as_micros()).unwrap_or(i64::MAX));
    conn.prepare_cached("DELETE FROM remembered WHERE at_us < ?1")?.execute(params![cutoff])
}

/// Microseconds since 1970-01-01 UTC.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Remembered answers in an SQLite file of their own: the Kafka log's local index of its
/// idempotency topic (the topic is the durable copy; the index is rebuilt from it).
pub struct RememberedIndex {
    conn: Mutex<Connection>,
    window: Duration,
}

impl RememberedIndex {
    /// Opens (creating) the index at `path`, or one in memory when `path` is `None`.
    pub fn open(path: Option<&Path>, window: Duration) -> Result<Self, LogError> {
        let conn = match path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| LogError::Unavailable(format!("{}: {e}", dir.display())))?;
                }
                Connection::open(path)
            }
            None => Connection::open_in_memory(),
        }
        .map_err(LogError::unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(LogError::unavailable)?;
        conn.execute_batch(SCHEMA).map_err(LogError::unavailable)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS index_position (id INTEGER PRIMARY KEY CHECK (id = 0), next INTEGER NOT NULL);",
        )
        .map_err(LogError::unavailable)?;
        trim(&conn, window).map_err(LogError::unavailable)?;
        Ok(Self { conn: Mutex::new(conn), window })
    }

    /// Stores answers read from the log, up to (not including) log offset `next`.
    pub fn insert_from_log(&self, answers: &[Remembered], next: u64) -> Result<(), LogError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction().map_err(LogError::unavailable)?;
        for answer in answers.iter().filter(|a| a.is_live(now_us(), self.window)) {
            insert(&tx, answer).map_err(LogError::unavailable)?;
        }
        tx.execute("INSERT OR REPLACE INTO index_position (id, next) VALUES (0, ?1)", params![next as i64])
            .map_err(LogError::unavailable)?;
        tx.commit().map_err(LogError::unavailable)
    }

    /// Stores an answer this process just wrote to the log.
    pub fn insert(&self, answer: &Remembered) -> Result<(), LogError> {
        insert(&self.conn.lock().unwrap_or_else(|e| e.into_inner()), answer).map_err(LogError::unavailable)
    }

    /// The log offset up to which the index holds the log's answers.
    pub fn next_offset(&self) -> Result<u64, LogError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row("SELECT next FROM index_position WHERE id = 0", [], |r| r.get::<_, i64>(0))
            .optional()
            .map(|next| next.unwrap_or(0) as u64)
            .map_err(LogError::unavailable)
    }

    /// The live answer under (`source`, `user`, `key`).
    pub fn get(&self, source: &str, user: &str, key: &str) -> Result<Option<Remembered>, LogError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        get(&conn, source, user, key, self.window).map_err(LogError::unavailable)
    }

    /// Forgets the answers older than the window.
    pub fn trim(&self) -> Result<usize, LogError> {
        trim(&self.conn.lock().unwrap_or_else(|e| e.into_inner()), self.window).map_err(LogError::unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_do_not_collide_and_answers_expire() {
        assert_ne!(Remembered::log_key("ab", "c", "k"), Remembered::log_key("a", "bc", "k"));
        assert_ne!(Remembered::log_key("a", "b", "1:ck"), Remembered::log_key("a", "b1:c", "k"));
        let answer = Remembered {
            source: "s".into(),
            user: "u".into(),
            key: "k".into(),
            fingerprint: "f".into(),
            status: 202,
            response: "{}".into(),
            at_us: 1_000_000,
        };
        assert!(answer.is_live(1_000_000 + 59_999_999, Duration::from_secs(60)));
        assert!(!answer.is_live(1_000_000 + 60_000_000, Duration::from_secs(60)));
    }
}
