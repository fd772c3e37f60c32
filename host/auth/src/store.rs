//! The store: opening, administration of users, grants and tokens, and audit access.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use crate::audit::{AuditEntry, AuditWriter, Outcome};
use crate::db::{Conn, Value};
use crate::error::{Error, Result};
use crate::limiter::{AuthPolicy, FailureLimiter};
use crate::token::{self, NewToken};
use crate::verify::VerifyCache;
use crate::{is_valid_name, password};

/// The auth database. Safe to share between threads; every method is blocking (argon2 and
/// SQLite or PostgreSQL), so async callers use `spawn_blocking`.
pub struct AuthStore {
    pub(crate) conn: Mutex<Conn>,
    /// PostgreSQL: the auth generation as a background thread last read it (every
    /// [`GENERATION_POLL`]), so that a cached verification needs no round trip; a failed read
    /// stores a value no read gives, which empties the cache. `None`: SQLite, read at each
    /// verification (a local read).
    pub(crate) generation: Option<Arc<AtomicI64>>,
    /// PostgreSQL: a connection of its own for claims, which every keyed request makes.
    claims: Option<Mutex<Conn>>,
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
            std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The write-ahead log shrinks back to this after a checkpoint (see the spool).
        conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
        let mut conn = Conn::Sqlite(conn);
        crate::schema::migrate(&mut conn)?;
        let audit_conn = Connection::open(path)?;
        audit_conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
        audit_conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::with(conn, Conn::Sqlite(audit_conn), None, policy)
    }

    /// Opens the PostgreSQL database at `url` (`postgres://user:password@host:port/db`; the
    /// password may come from `policy.password_file` instead), creating or upgrading its
    /// tables: the store several sluice instances share.
    pub fn open_postgres(url: &str, policy: AuthPolicy) -> Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::InvalidUrl("expected postgres://user:password@host:port/database".into()));
        }
        let (url, root_certificate) = crate::tls::libpq_tls_options(url)?;
        let root_certificate = match (root_certificate, &policy.postgres_ca) {
            (Some(file), Some(configured)) if &file != configured => {
                return Err(Error::InvalidUrl(format!(
                    "sslrootcert {} differs from auth.postgres_ca {}: give one of them",
                    file.display(),
                    configured.display()
                )));
            }
            (file, configured) => file.or_else(|| configured.clone()),
        };
        let mut config: postgres::Config =
            url.parse().map_err(|e: postgres::Error| Error::InvalidUrl(e.to_string()))?;
        if let Some(file) = &policy.password_file {
            let text = std::fs::read_to_string(file).map_err(|source| Error::Io { path: file.clone(), source })?;
            config.password(text.lines().next().unwrap_or_default().trim_end());
        }
        let tls = crate::tls::connector(root_certificate.as_deref())?;
        let mut conn = Conn::postgres(&config, &tls)?;
        crate::schema::migrate(&mut conn)?;
        let audit_conn = Conn::postgres(&config, &tls)?;
        let generation = Arc::new(AtomicI64::new(crate::verify::data_version(&mut conn)?));
        let poller = Conn::postgres(&config, &tls)?;
        follow_generation(poller, Arc::downgrade(&generation));
        let mut store = Self::with(conn, audit_conn, Some(generation), policy)?;
        store.claims = Some(Mutex::new(Conn::postgres(&config, &tls)?));
        Ok(store)
    }

    /// Opens the store `policy.url` names: PostgreSQL, or when it is empty the SQLite file at
    /// `path`.
    pub fn open_configured(path: &Path, policy: AuthPolicy) -> Result<Self> {
        if policy.url.0.is_empty() {
            Self::open(path, policy)
        } else {
            let url = policy.url.clone();
            Self::open_postgres(url.expose(), policy)
        }
    }

    fn with(mut conn: Conn, audit: Conn, generation: Option<Arc<AtomicI64>>, policy: AuthPolicy) -> Result<Self> {
        let data_version = crate::verify::data_version(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            generation,
            claims: None,
            audit: AuditWriter::start(audit, &policy),
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

    /// Whether this store is the shared PostgreSQL one.
    pub fn is_shared(&self) -> bool {
        self.generation.is_some()
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops cached verifications: called after every change made through this store.
    fn changed(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn user_id(conn: &mut Conn, name: &str) -> Result<i64> {
        conn.query_opt("SELECT id FROM users WHERE name = ?1", &[name.into()])?
            .map(|row| row[0].int())
            .ok_or_else(|| Error::NoSuchUser(name.to_string()))
    }

    /// Adds a user with an argon2id hash of `password`.
    pub fn add_user(&self, name: &str, password: &str) -> Result<()> {
        check_name("user", name)?;
        let hash = {
            let _slot = self.hash_slots.acquire();
            password::hash(password)?
        };
        let inserted = self.conn().execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
            &[name.into(), hash.into(), now().into()],
        )?;
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
            &[name.into(), hash.into()],
        )?;
        if updated == 0 {
            return Err(Error::NoSuchUser(name.to_string()));
        }
        self.changed();
        Ok(())
    }

    /// Removes a user with their grants and tokens.
    pub fn remove_user(&self, name: &str) -> Result<()> {
        let removed = self.conn().execute("DELETE FROM users WHERE name = ?1", &[name.into()])?;
        if removed == 0 {
            return Err(Error::NoSuchUser(name.to_string()));
        }
        self.changed();
        Ok(())
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<UserInfo>> {
        let mut conn = self.conn();
        let sql = if conn.is_postgres() {
            "SELECT u.name, u.created_at, u.locked_until, string_agg(g.source, ',' ORDER BY g.source)
             FROM users u LEFT JOIN grants g ON g.user_id = u.id
             GROUP BY u.id, u.name, u.created_at, u.locked_until ORDER BY u.name"
        } else {
            "SELECT u.name, u.created_at, u.locked_until, group_concat(g.source, ',')
             FROM users u LEFT JOIN (SELECT * FROM grants ORDER BY source) g ON g.user_id = u.id
             GROUP BY u.id ORDER BY u.name"
        };
        let rows = conn.query(sql, &[])?;
        Ok(rows
            .into_iter()
            .map(|r| UserInfo {
                name: r[0].string(),
                created_at: r[1].string(),
                locked_until: r[2].text(),
                sources: r[3].text().map(|s| s.split(',').map(String::from).collect()).unwrap_or_default(),
            })
            .collect())
    }

    /// Lets `user` post to `source` (registering the source name).
    pub fn grant(&self, user: &str, source: &str) -> Result<()> {
        check_name("source", source)?;
        self.conn().transaction(|conn| {
            let id = Self::user_id(conn, user)?;
            conn.execute(
                "INSERT INTO sources (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                &[source.into(), now().into()],
            )?;
            conn.execute(
                "INSERT INTO grants (user_id, source, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                &[id.into(), source.into(), now().into()],
            )
        })?;
        self.changed();
        Ok(())
    }

    /// Withdraws a grant.
    pub fn revoke_grant(&self, user: &str, source: &str) -> Result<()> {
        let mut conn = self.conn();
        let id = Self::user_id(&mut conn, user)?;
        let removed =
            conn.execute("DELETE FROM grants WHERE user_id = ?1 AND source = ?2", &[id.into(), source.into()])?;
        drop(conn);
        if removed == 0 {
            return Err(Error::NoSuchGrant(user.to_string(), source.to_string()));
        }
        self.changed();
        Ok(())
    }

    /// Grants, optionally of one user.
    pub fn list_grants(&self, user: Option<&str>) -> Result<Vec<GrantInfo>> {
        let mut conn = self.conn();
        if let Some(user) = user {
            Self::user_id(&mut conn, user)?;
        }
        let rows = conn.query(
            "SELECT u.name, g.source FROM grants g JOIN users u ON u.id = g.user_id
             WHERE CAST(?1 AS TEXT) IS NULL OR u.name = ?1 ORDER BY u.name, g.source",
            &[user.into()],
        )?;
        Ok(rows.into_iter().map(|r| GrantInfo { user: r[0].string(), source: r[1].string() }).collect())
    }

    /// Creates an API token for `user`, valid until `expires_at` if given. The returned secret is
    /// shown once; only its hash is stored.
    pub fn create_token(&self, user: &str, label: &str, expires_at: Option<DateTime<Utc>>) -> Result<NewToken> {
        let mut conn = self.conn();
        let id = Self::user_id(&mut conn, user)?;
        let (new, hash) = token::generate();
        conn.execute(
            "INSERT INTO tokens (id, user_id, secret_hash, label, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                new.id.as_str().into(),
                id.into(),
                hash.into(),
                label.into(),
                now().into(),
                expires_at.map(|t| t.to_rfc3339()).into(),
            ],
        )?;
        Ok(new)
    }

    /// Tokens, optionally of one user.
    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>> {
        let rows = self.conn().query(
            "SELECT t.id, u.name, t.label, t.created_at, t.expires_at, t.revoked_at FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE CAST(?1 AS TEXT) IS NULL OR u.name = ?1 ORDER BY u.name, t.created_at",
            &[user.into()],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| TokenInfo {
                id: r[0].string(),
                user: r[1].string(),
                label: r[2].string(),
                created_at: r[3].string(),
                expires_at: r[4].text(),
                revoked_at: r[5].text(),
            })
            .collect())
    }

    /// Revokes a token by id.
    pub fn revoke_token(&self, id: &str) -> Result<()> {
        let updated = self.conn().execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            &[id.into(), now().into()],
        )?;
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
        self.audit_rows(&AuditFilter::default(), limit)
    }

    /// The newest `limit` audit rows that `filter` selects, newest first (waits for queued
    /// rows first).
    pub fn audit_rows(&self, filter: &AuditFilter, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audit.flush();
        let mut conditions = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        let mut condition = |sql: &str, value: Value| {
            params.push(value);
            conditions.push(sql.replace('?', &format!("?{}", params.len())));
        };
        if let Some(since) = filter.since {
            condition("at >= ?", audit_time(since).into());
        }
        if let Some(until) = filter.until {
            condition("at < ?", audit_time(until).into());
        }
        if let Some(user) = &filter.user {
            condition(r#""user" = ?"#, user.into());
        }
        if let Some(source) = &filter.source {
            condition("source = ?", source.into());
        }
        if let Some(client) = &filter.client {
            condition("client = ?", client.into());
        }
        if let Some(request_id) = &filter.request_id {
            condition("request_id = ?", request_id.into());
        }
        if let Some(outcome) = filter.outcome {
            condition("outcome = ?", outcome.as_str().into());
        }
        let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        params.push((limit.min(i64::MAX as usize) as i64).into());
        let sql = format!(
            r#"SELECT at, "user", source, request_id, client, accepted, rejected, outcome, detail, attempts FROM audit {filter} ORDER BY id DESC LIMIT ?{}"#,
            params.len()
        );
        let rows = self.conn().query(&sql, &params)?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                at: r[0].string(),
                user: r[1].text(),
                source: r[2].text(),
                request_id: r[3].string(),
                client: r[4].text(),
                accepted: r[5].int() as u64,
                rejected: r[6].int() as u64,
                outcome: Outcome::named(&r[7].string()).unwrap_or(Outcome::BadRequest),
                detail: r[8].text(),
                attempts: r[9].int() as u64,
            })
            .collect())
    }
}

/// Which audit rows [`AuthStore::audit_rows`] returns: every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Rows at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Rows before this time.
    pub until: Option<DateTime<Utc>>,
    /// Rows of this user (for a failed login, the name claimed).
    pub user: Option<String>,
    /// Rows of this source.
    pub source: Option<String>,
    /// Rows of this client address.
    pub client: Option<String>,
    /// The row of this request id.
    pub request_id: Option<String>,
    /// Rows that ended so.
    pub outcome: Option<Outcome>,
}

/// A time as audit rows store it (RFC 3339, UTC, microseconds: ordered as text).
fn audit_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The right to do what only one instance may do at a time (the catalog's DDL), held while the
/// value lives. On the shared store it is a PostgreSQL advisory lock held by a connection of
/// its own: it ends when the holder drops it, dies or loses its connection. On the embedded
/// store the one instance always holds it.
pub struct Leader {
    conn: Option<Mutex<Conn>>,
}

impl Leader {
    /// Whether the lock is still held (its connection answers).
    pub fn holds(&self) -> bool {
        match &self.conn {
            None => true,
            Some(conn) => {
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                conn.query("SELECT 1", &[]).is_ok()
            }
        }
    }
}

impl AuthStore {
    /// Claims `key` for `holder` until `ttl` from now, unless another holder's claim on it is
    /// still running: whether the claim was taken. Without the shared store every claim is
    /// taken (the one instance keeps its claims in memory).
    pub fn claim(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let Some(claims) = &self.claims else { return Ok(true) };
        let now = crate::audit::now_us();
        let taken = claims.lock().unwrap_or_else(|e| e.into_inner()).query_opt(
            "INSERT INTO claims (key, holder, expires_us) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_us = excluded.expires_us
             WHERE claims.expires_us < ?4 RETURNING holder",
            &[key.into(), holder.into(), (now + ttl.as_micros() as i64).into(), now.into()],
        )?;
        Ok(taken.is_some())
    }

    /// Gives back a claim `holder` took.
    pub fn release(&self, key: &str, holder: &str) -> Result<()> {
        let Some(claims) = &self.claims else { return Ok(()) };
        claims
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .execute("DELETE FROM claims WHERE key = ?1 AND holder = ?2", &[key.into(), holder.into()])?;
        Ok(())
    }

    /// Takes the leadership of `role` if no instance holds it; `None` when another does.
    pub fn try_lead(&self, role: &str) -> Result<Option<Leader>> {
        let Some((config, tls)) = self.conn().postgres_config().map(|(c, t)| (c.clone(), t.clone())) else {
            return Ok(Some(Leader { conn: None }));
        };
        let mut conn = Conn::postgres(&config, &tls)?;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("sluice leader {role}").as_bytes());
        let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        let taken =
            conn.query_opt("SELECT pg_try_advisory_lock(?1)", &[key.into()])?.is_some_and(|row| row[0].int() == 1);
        Ok(taken.then(|| Leader { conn: Some(Mutex::new(conn)) }))
    }
}

/// How often an instance on the shared PostgreSQL store reads the auth generation: a change
/// made on any instance (a revoked token, a removed grant, a lock) takes effect on every other
/// instance within this, plus one read.
pub const GENERATION_POLL: Duration = Duration::from_secs(1);

/// Reads the auth generation every [`GENERATION_POLL`] into `generation` until the store is
/// dropped. A failed read stores a value no read gives: cached verifications end, and the
/// next ones need the database.
fn follow_generation(mut conn: Conn, generation: std::sync::Weak<AtomicI64>) {
    let spawned = std::thread::Builder::new().name("sluice-auth-generation".into()).spawn(move || {
        let mut failures = 0i64;
        loop {
            std::thread::sleep(GENERATION_POLL);
            let Some(target) = generation.upgrade() else { return };
            match crate::verify::data_version(&mut conn) {
                Ok(version) => target.store(version, Ordering::SeqCst),
                Err(error) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(%error, "cannot read the auth generation; verifying every request");
                    }
                    target.store(-failures, Ordering::SeqCst);
                    continue;
                }
            }
            failures = 0;
        }
    });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the auth generation reader");
    }
}
