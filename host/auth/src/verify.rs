//! Verifying credentials: cached, rate-limited, with a lock after repeated failures.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::db::{Conn, Value};
use crate::error::AuthError;
use crate::limiter::{Attempt, password_fingerprint};
use crate::store::AuthStore;
use crate::{password, token};

/// Credentials from an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP Basic.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// `Bearer <token>`.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { user, .. } => write!(f, "Basic({user}, <password>)"),
            Self::Bearer(_) => f.write_str("Bearer(<token>)"),
        }
    }
}

impl Credentials {
    /// Parses an `Authorization` header value.
    pub fn from_header(value: &str) -> Result<Self, AuthError> {
        use base64::Engine as _;
        let (scheme, rest) =
            value.trim().split_once(' ').ok_or(AuthError::Malformed("expected `Basic …` or `Bearer …`"))?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            // Padding is optional (RFC 4648 §3.2): some clients leave it out.
            const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let decoded = BASE64.decode(rest).map_err(|_| AuthError::Malformed("Basic credentials are not base64"))?;
            let text =
                String::from_utf8(decoded).map_err(|_| AuthError::Malformed("Basic credentials are not UTF-8"))?;
            let (user, password) = text.split_once(':').ok_or(AuthError::Malformed("Basic credentials lack `:`"))?;
            Ok(Self::Basic { user: user.to_string(), password: password.to_string() })
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if rest.is_empty() {
                return Err(AuthError::Malformed("empty Bearer token"));
            }
            Ok(Self::Bearer(rest.to_string()))
        } else {
            Err(AuthError::Malformed("expected `Basic …` or `Bearer …`"))
        }
    }

    /// The user name claimed (Basic), for rate limiting and audit.
    pub fn claimed_user(&self) -> Option<&str> {
        match self {
            Self::Basic { user, .. } => Some(user),
            Self::Bearer(token) => token::parse(token).map(|(id, _)| id),
        }
    }

    fn cache_key(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        match self {
            Self::Basic { user, password } => {
                hasher.update(b"basic\0");
                hasher.update(user.as_bytes());
                hasher.update(b"\0");
                hasher.update(password.as_bytes());
            }
            Self::Bearer(token) => {
                hasher.update(b"bearer\0");
                hasher.update(token.as_bytes());
            }
        }
        hasher.finalize().into()
    }
}

/// An authenticated user and what they may post to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name.
    pub user: String,
    /// Sources granted.
    pub sources: BTreeSet<String>,
}

impl Principal {
    /// Whether the user may post to `source`.
    pub fn may_post(&self, source: &str) -> bool {
        self.sources.contains(source)
    }
}

/// Successful verifications, valid until the database changes or they expire.
#[derive(Debug)]
pub(crate) struct VerifyCache {
    entries: HashMap<[u8; 32], (Principal, Instant)>,
    data_version: i64,
}

impl VerifyCache {
    pub(crate) fn new(data_version: i64) -> Self {
        Self { entries: HashMap::new(), data_version }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The auth generation: changes whenever users, passwords, grants or tokens change, from any
/// process (maintained by triggers; audit rows and failure counters leave it alone).
pub(crate) fn data_version(conn: &mut Conn) -> crate::Result<i64> {
    Ok(conn.query_opt("SELECT generation FROM auth_generation", &[])?.map_or(0, |row| row[0].int()))
}

fn grants(conn: &mut Conn, user_id: i64) -> crate::Result<BTreeSet<String>> {
    let rows = conn.query("SELECT source FROM grants WHERE user_id = ?1", &[user_id.into()])?;
    Ok(rows.into_iter().map(|r| r[0].string()).collect())
}

/// A database failure during a verification: logged, and answered as "unavailable" (the
/// credentials could be right).
fn unavailable(error: crate::Error) -> AuthError {
    tracing::error!(%error, "the auth database failed during a verification");
    AuthError::Unavailable
}

/// A token joined with its owner.
struct TokenRow {
    hash: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    user_id: i64,
    user: String,
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

impl AuthStore {
    /// Verifies credentials from `client`. Blocking: may run argon2 (tens of milliseconds) when
    /// the credentials are not cached.
    pub fn authenticate(&self, credentials: &Credentials, client: IpAddr) -> Result<Principal, AuthError> {
        match self.authenticate_cached(credentials) {
            Some(principal) => Ok(principal),
            None => self.authenticate_uncached(credentials, client),
        }
    }

    /// [`authenticate`](Self::authenticate) for a caller that just found the credentials not
    /// cached ([`authenticate_cached`](Self::authenticate_cached) gave `None`): the same, without
    /// looking the cache up first. Blocking.
    pub fn authenticate_uncached(&self, credentials: &Credentials, client: IpAddr) -> Result<Principal, AuthError> {
        let key = credentials.cache_key();
        // One verification per set of credentials at a time: when a cached entry expires, the
        // connections using it wait for one argon2 computation instead of each running its own
        // (and find the cache filled when their turn comes).
        let _turn = self.in_flight.enter(key);
        if let Some(principal) = self.cached(&key) {
            return Ok(principal);
        }
        // Counted before the (expensive) check, atomically: concurrent guesses cannot all pass.
        let mut attempt = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .begin(&self.policy, &key, client)
            .map_err(|retry_after| AuthError::RateLimited { retry_after })?;
        let result = match credentials {
            Credentials::Basic { user, password } => self.verify_password(user, password, &mut attempt),
            Credentials::Bearer(token) => self.verify_token(token),
        };
        match result {
            Ok((principal, valid_for)) => {
                self.limiter.lock().unwrap_or_else(|e| e.into_inner()).succeeded(attempt, key);
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.entries.len() > 100_000 {
                    cache.clear();
                }
                cache.entries.insert(key, (principal.clone(), Instant::now() + valid_for));
                Ok(principal)
            }
            Err(error) => {
                if matches!(error, AuthError::Locked { .. }) {
                    self.limiter.lock().unwrap_or_else(|e| e.into_inner()).not_counted(attempt);
                }
                Err(error)
            }
        }
    }

    /// The principal for `credentials` if a verification of them is cached and still valid:
    /// no argon2, one short read of the auth generation, so an async thread may call it. On
    /// `None`, [`authenticate`](Self::authenticate) verifies them in full.
    pub fn authenticate_cached(&self, credentials: &Credentials) -> Option<Principal> {
        self.cached(&credentials.cache_key())
    }

    /// The principal cached for `key`, if its verification is still valid.
    fn cached(&self, key: &[u8; 32]) -> Option<Principal> {
        let version = match &self.generation {
            Some(generation) => generation.load(std::sync::atomic::Ordering::SeqCst),
            None => data_version(&mut self.conn()).unwrap_or(-1),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.data_version != version {
            cache.clear();
            cache.data_version = version;
            self.limiter.lock().unwrap_or_else(|e| e.into_inner()).distrust_all();
        }
        let (principal, until) = cache.entries.get(key)?;
        if Instant::now() < *until {
            return Some(principal.clone());
        }
        cache.entries.remove(key);
        None
    }

    /// `password::verify` within one of the argon2 slots.
    fn check_password(&self, password: &str, hash: &str) -> bool {
        let _slot = self.hash_slots.acquire();
        password::verify(password, hash)
    }

    fn verify_password(
        &self,
        user: &str,
        password: &str,
        attempt: &mut Attempt,
    ) -> Result<(Principal, Duration), AuthError> {
        let row = self
            .conn()
            .query_opt(
                "SELECT id, password_hash, failed_logins, locked_until FROM users WHERE name = ?1",
                &[user.into()],
            )
            .map_err(unavailable)?;
        // Counted against this password of the user (before argon2, atomically, as the client's
        // count): failures against an old password do not hold a new one back.
        let hash = row.as_ref().map(|row| row[1].string());
        self.limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count_user(&self.policy, attempt, user, password_fingerprint(hash.as_deref()))
            .map_err(|retry_after| AuthError::RateLimited { retry_after })?;
        let Some(row) = row else {
            // Same cost as a wrong password, so timing does not reveal which names exist.
            self.check_password(password, password::dummy_hash());
            return Err(AuthError::BadPassword);
        };
        let (id, hash, failed, locked_until) = (row[0].int(), hash.unwrap_or_default(), row[2].int(), row[3].text());
        if let Some(until) = locked_until.as_deref().and_then(parse_time) {
            let left = until - Utc::now();
            if left > chrono::TimeDelta::zero() {
                return Err(AuthError::Locked { retry_after: left.to_std().unwrap_or_default() });
            }
        }
        self.password_checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !self.check_password(password, &hash) {
            // One statement: concurrent failures each count, and exactly one of them locks
            // (the one whose update set this lock time).
            let until =
                (Utc::now() + chrono::TimeDelta::from_std(self.policy.lock_for).unwrap_or_default()).to_rfc3339();
            let locked_now = self
                .conn()
                .query_opt(
                    "UPDATE users SET
                        failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0 ELSE failed_logins + 1 END,
                        locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END
                     WHERE id = ?1 RETURNING locked_until",
                    &[id.into(), i64::from(self.policy.lock_after).into(), Value::from(until.as_str())],
                )
                .map_err(unavailable)?
                .and_then(|row| row[0].text());
            if locked_now.as_deref() == Some(until.as_str()) {
                tracing::warn!(user, "user locked after repeated failed logins");
                // Cached logins of the user end now (other processes see the generation change).
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
                self.limiter.lock().unwrap_or_else(|e| e.into_inner()).distrust_all();
            }
            return Err(AuthError::BadPassword);
        }
        let mut conn = self.conn();
        if failed > 0 || locked_until.is_some() {
            let _ = conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1", &[id.into()]);
        }
        let sources = grants(&mut conn, id).map_err(unavailable)?;
        Ok((Principal { user: user.to_string(), sources }, self.policy.cache_for))
    }

    fn verify_token(&self, presented: &str) -> Result<(Principal, Duration), AuthError> {
        let (id, secret) = token::parse(presented).ok_or(AuthError::BadToken)?;
        let mut conn = self.conn();
        let row = conn
            .query_opt(
                "SELECT t.secret_hash, t.expires_at, t.revoked_at, u.id, u.name FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?1",
                &[id.into()],
            )
            .map_err(unavailable)?
            .map(|r| TokenRow {
                hash: r[0].string(),
                expires_at: r[1].text(),
                revoked_at: r[2].text(),
                user_id: r[3].int(),
                user: r[4].string(),
            });
        let Some(TokenRow { hash, expires_at, revoked_at, user_id, user }) = row else {
            return Err(AuthError::BadToken);
        };
        if !token::constant_time_eq(&token::secret_hash(secret), &hash) {
            return Err(AuthError::BadToken);
        }
        if revoked_at.is_some() {
            return Err(AuthError::TokenRevoked);
        }
        let mut valid_for = self.policy.cache_for;
        if let Some(expires) = expires_at.as_deref().and_then(parse_time) {
            let left = expires - Utc::now();
            if left <= chrono::TimeDelta::zero() {
                return Err(AuthError::TokenExpired);
            }
            valid_for = valid_for.min(left.to_std().unwrap_or_default());
        }
        let sources = grants(&mut conn, user_id).map_err(unavailable)?;
        Ok((Principal { user, sources }, valid_for))
    }
}
