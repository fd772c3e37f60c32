//! The store: opening, administration of users, grants and tokens, and audit access.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::audit::{AuditEntry, AuditWriter};
use crate::error::{Error, Result};
use crate::limiter::{AuthPolicy, FailureLimiter};
use crate::token::{self, NewToken};
use crate::verify::VerifyCache;
use crate::{is_valid_name, password};

/// The auth database. Safe to share between threads; every method is blocking (argon2 and
/// SQLite), so async callers use `spawn_blocking`.
pub struct AuthStore {
    pub(crate) conn: Mutex<Connection>,
    pub(crate) audit: AuditWriter,
    pub(crate) cache: Mutex<VerifyCache>,
    pub(crate) limiter: Mutex<FailureLimiter>,
    pub(crate) policy: AuthPolicy,
    pub(crate) password_checks: std::sync::atomic::AtomicU64,
    /// Credentials being verified now (a second caller waits and then reads the cache).
    pub(crate) in_flight: crate::gate::InFlight,
    /// Bounds concurrent argon2 computations (each takes ~19 MiB).
    pub(crate) hash_slots: crate::gate::HashSlots,
}

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// Name.
    pub name: String,
    /// When created (RFC 3339).
    pub created_at: String,
    /// When a lock after failed logins ends, if locked.
    pub locked_until: Option<String>,
    /// Sources the user may post to.
    pub sources: Vec<String>,
}

/// A grant as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantInfo {
    /// User name.
    pub user: String,
    /// Source name.
    pub source: String,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Owner.
    pub user: String,
    /// Free text given at creation.
    pub label: String,
    /// Creation time.
    pub created_at: String,
    /// Expiry, if any.
    pub expires_at: Option<String>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<String>,
}

pub(crate) fn now() -> String {
    Utc::now().to_rfc3339()
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    if is_valid_name(name) { Ok(()) } else { Err(Error::InvalidName { what, name: name.to_string() }) }
}

impl AuthStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub fn open(path: &Path, policy: AuthPolicy) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The write-ahead log shrinks back to this after a checkpoint (see the spool).
        conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
        crate::schema::migrate(&mut conn)?;
        let audit_conn = Connection::open(path)?;
        audit_conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
        audit_conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let data_version = crate::verify::data_version(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            audit: AuditWriter::start(audit_conn),
            cache: Mutex::new(VerifyCache::new(data_version)),
            limiter: Mutex::new(FailureLimiter::default()),
            policy,
            password_checks: std::sync::atomic::AtomicU64::new(0),
            in_flight: crate::gate::InFlight::default(),
            hash_slots: crate::gate::HashSlots::per_core(),
        })
    }

    /// How many argon2 password verifications this store has run (cache misses), for metrics
    /// and tests.
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops cached verifications: called after every change made through this store.
    fn changed(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn user_id(conn: &Connection, name: &str) -> Result<i64> {
        conn.query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
            .optional()?
            .ok_or_else(|| Error::NoSuchUser(name.to_string()))
    }

    /// Adds a user with an argon2id hash of `password`.
    pub fn add_user(&self, name: &str, password: &str) -> Result<()> {
        check_name("user", name)?;
        let hash = {
            let _slot = self.hash_slots.acquire();
            password::hash(password)?
        };
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
            params![name, hash, now()],
        )?;
        drop(conn);
        if inserted == 0 {
            return Err(Error::UserExists(name.to_string()));
        }
        self.changed();
        Ok(())
    }

    /// Replaces a user's password and lifts any lock.
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let hash = {
            let _slot = self.hash_slots.acquire();
            password::hash(password)?
        };
        let updated = self.conn().execute(
            "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL WHERE name = ?1",
            params![name, hash],
        )?;
        if updated == 0 {
            return Err(Error::NoSuchUser(name.to_string()));
        }
        self.changed();
        Ok(())
    }

    /// Removes a user with their grants and tokens.
    pub fn remove_user(&self, name: &str) -> Result<()> {
        let removed = self.conn().execute("DELETE FROM users WHERE name = ?1", [name])?;
        if removed == 0 {
            return Err(Error::NoSuchUser(name.to_string()));
        }
        self.changed();
        Ok(())
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<UserInfo>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT u.name, u.created_at, u.locked_until, group_concat(g.source, ',')
             FROM users u LEFT JOIN (SELECT * FROM grants ORDER BY source) g ON g.user_id = u.id
             GROUP BY u.id ORDER BY u.name",
        )?;
        let rows = statement.query_map([], |r| {
            let sources: Option<String> = r.get(3)?;
            Ok(UserInfo {
                name: r.get(0)?,
                created_at: r.get(1)?,
                locked_until: r.get(2)?,
                sources: sources.map(|s| s.split(',').map(String::from).collect()).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Lets `user` post to `source` (registering the source name).
    pub fn grant(&self, user: &str, source: &str) -> Result<()> {
        check_name("source", source)?;
        let conn = self.conn();
        let id = Self::user_id(&conn, user)?;
        conn.execute("INSERT OR IGNORE INTO sources (name, created_at) VALUES (?1, ?2)", params![source, now()])?;
        conn.execute(
            "INSERT OR IGNORE INTO grants (user_id, source, created_at) VALUES (?1, ?2, ?3)",
            params![id, source, now()],
        )?;
        drop(conn);
        self.changed();
        Ok(())
    }

    /// Withdraws a grant.
    pub fn revoke_grant(&self, user: &str, source: &str) -> Result<()> {
        let conn = self.conn();
        let id = Self::user_id(&conn, user)?;
        let removed = conn.execute("DELETE FROM grants WHERE user_id = ?1 AND source = ?2", params![id, source])?;
        drop(conn);
        if removed == 0 {
            return Err(Error::NoSuchGrant(user.to_string(), source.to_string()));
        }
        self.changed();
        Ok(())
    }

    /// Grants, optionally of one user.
    pub fn list_grants(&self, user: Option<&str>) -> Result<Vec<GrantInfo>> {
        let conn = self.conn();
        if let Some(user) = user {
            Self::user_id(&conn, user)?;
        }
        let mut statement = conn.prepare(
            "SELECT u.name, g.source FROM grants g JOIN users u ON u.id = g.user_id
             WHERE ?1 IS NULL OR u.name = ?1 ORDER BY u.name, g.source",
        )?;
        let rows = statement.query_map([user], |r| Ok(GrantInfo { user: r.get(0)?, source: r.get(1)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates an API token for `user`, valid until `expires_at` if given. The returned secret is
    /// shown once; only its hash is stored.
    pub fn create_token(&self, user: &str, label: &str, expires_at: Option<DateTime<Utc>>) -> Result<NewToken> {
        let conn = self.conn();
        let id = Self::user_id(&conn, user)?;
        let (new, hash) = token::generate();
        conn.execute(
            "INSERT INTO tokens (id, user_id, secret_hash, label, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![new.id, id, hash, label, now(), expires_at.map(|t| t.to_rfc3339())],
        )?;
        Ok(new)
    }

    /// Tokens, optionally of one user.
    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT t.id, u.name, t.label, t.created_at, t.expires_at, t.revoked_at FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE ?1 IS NULL OR u.name = ?1 ORDER BY u.name, t.created_at",
        )?;
        let rows = statement.query_map([user], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                user: r.get(1)?,
                label: r.get(2)?,
                created_at: r.get(3)?,
                expires_at: r.get(4)?,
                revoked_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revokes a token by id.
    pub fn revoke_token(&self, id: &str) -> Result<()> {
        let updated = self
            .conn()
            .execute("UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, now()])?;
        if updated == 0 {
            return Err(Error::NoSuchToken(id.to_string()));
        }
        self.changed();
        Ok(())
    }

    /// Queues an audit row; written in the background.
    pub fn audit(&self, entry: AuditEntry) {
        self.audit.record(entry);
    }

    /// Waits until every audit row queued so far is written, or a write of them failed (at
    /// shutdown: the rows still queued then are counted in the log).
    pub fn flush_audit(&self) {
        self.audit.flush();
        let pending = self.audit.pending();
        if pending > 0 {
            tracing::error!(pending, "audit rows could not be written before shutdown");
        }
    }

    /// Whether audit rows are being written now: when not, requests should be refused, since
    /// they could not be audited.
    pub fn audit_writable(&self) -> bool {
        self.audit.writable()
    }

    /// The newest `limit` audit rows, newest first (waits for queued rows first).
    pub fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audit.flush();
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT at, user, source, request_id, client, accepted, rejected, outcome FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = statement.query_map([limit as i64], |r| {
            let outcome: String = r.get(7)?;
            Ok(AuditEntry {
                at: r.get(0)?,
                user: r.get(1)?,
                source: r.get(2)?,
                request_id: r.get(3)?,
                client: r.get(4)?,
                accepted: r.get::<_, i64>(5)? as u64,
                rejected: r.get::<_, i64>(6)? as u64,
                outcome: crate::audit::outcome_from_str(&outcome),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
