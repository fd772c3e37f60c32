//! Errors of the auth store.

use std::time::Duration;

/// Why a request could not be authenticated or authorized. Each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("authentication required: send HTTP Basic credentials or a Bearer token")]
    Missing,
    /// The header is not valid Basic or Bearer syntax.
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("invalid user name or password")]
    BadPassword,
    /// The token is unknown or its secret is wrong.
    #[error("invalid API token")]
    BadToken,
    /// The token was revoked.
    #[error("API token has been revoked")]
    TokenRevoked,
    /// The token expired.
    #[error("API token has expired")]
    TokenExpired,
    /// The user is locked after repeated failures.
    #[error("user is locked after repeated failed logins; try again in {} s", .retry_after.as_secs().max(1))]
    Locked {
        /// Time until the lock ends.
        retry_after: Duration,
    },
    /// The auth database cannot be read now (PostgreSQL down): the credentials could not be
    /// checked either way.
    #[error("the auth store is unavailable; retry later")]
    Unavailable,
    /// Too many failures from this user or address.
    #[error("too many failed logins; try again in {} s", .retry_after.as_secs().max(1))]
    RateLimited {
        /// Time until another attempt is allowed.
        retry_after: Duration,
    },
}

/// Errors of store operations (administration, storage).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("auth database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed or cannot be reached.
    #[error("auth database (PostgreSQL) error: {0}")]
    Postgres(String),
    /// `auth.url` is not a URL the store can use.
    #[error("invalid auth.url: {0}")]
    InvalidUrl(String),
    /// The PostgreSQL server's certificate authority file (`auth.postgres_ca`, or `sslrootcert`
    /// in the URL) cannot be read or holds no certificate.
    #[error("cannot use the PostgreSQL certificate authority file {} (auth.postgres_ca or sslrootcert): {reason}", path.display())]
    PostgresCa {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The database's directory could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A name breaks the naming rule.
    #[error(
        "invalid {what} name `{name}`: use lowercase letters, digits, `_`, `-` and `.`, starting with a letter or digit (at most 64)"
    )]
    InvalidName {
        /// `user` or `source`.
        what: &'static str,
        /// The refused name.
        name: String,
    },
    /// A password is too short.
    #[error("password too short: at least {min} characters")]
    WeakPassword {
        /// Minimum length.
        min: usize,
    },
    /// The user exists already.
    #[error("user `{0}` already exists")]
    UserExists(String),
    /// No such user.
    #[error("no user named `{0}`")]
    NoSuchUser(String),
    /// No such token.
    #[error("no API token with id `{0}`")]
    NoSuchToken(String),
    /// No such grant.
    #[error("user `{0}` has no grant on source `{1}`")]
    NoSuchGrant(String, String),
    /// The database was written by a newer sluice.
    #[error("auth database schema version {found} is newer than this sluice understands ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest known version.
        supported: i64,
    },
    /// A seed database could not be understood.
    #[error("cannot import seed database: {0}")]
    Seed(String),
}

impl Error {
    pub(crate) fn postgres(error: postgres::Error) -> Self {
        // The server's message, with its cause when the connection failed.
        let cause = std::error::Error::source(&error).map(|c| format!(": {c}")).unwrap_or_default();
        Self::Postgres(format!("{error}{cause}"))
    }
}

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
