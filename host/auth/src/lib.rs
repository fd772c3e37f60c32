//! sluice's authentication store: users with argon2id password hashes, API tokens (random,
//! stored hashed, optional expiry, revocable), sources, grants (user → source) and the audit log,
//! in one SQLite file (the embedded default) or in PostgreSQL (`auth.url`, shared by several
//! instances), with versioned migrations.
//!
//! [`AuthStore::authenticate`] verifies HTTP Basic or Bearer credentials without an argon2 hash
//! per request: successful verifications are cached briefly and the cache is dropped whenever users, passwords,
//! grants or tokens change (from this process or another, e.g. `sluice users passwd` while
//! serving: triggers bump a generation counter that every verification reads).
//! Failed attempts are rate-limited per user and per client address, and repeated failures lock
//! the user for a while.

mod audit;
mod db;
mod error;
mod gate;
mod limiter;
mod password;
mod schema;
mod seed;
mod store;
mod tls;
mod token;
mod verify;

pub use audit::{AuditEntry, Outcome};
pub use error::{AuthError, Error, Result};
pub use limiter::{AuthPolicy, DatabaseUrl};
pub use seed::SeedImport;
pub use store::{AuditFilter, AuthStore, GENERATION_POLL, GrantInfo, Leader, TokenInfo, UserInfo};
pub use token::NewToken;
pub use verify::{Credentials, Principal};

/// Whether `name` is a valid user or source name: `[a-z0-9][a-z0-9_.-]*`, at most 64 bytes, so
/// names are safe in URLs, SQL and file names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
}
