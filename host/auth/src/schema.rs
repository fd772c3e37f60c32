//! Versioned migrations, tracked with `PRAGMA user_version`.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Migrations in order; migration `i` brings the schema to version `i + 1`. Never edit a released
/// migration: append a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TEXT
);
CREATE TABLE sources (
    name       TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE grants (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    source     TEXT NOT NULL REFERENCES sources(name),
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, source)
);
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    user       TEXT,
    source     TEXT,
    request_id TEXT NOT NULL,
    client     TEXT,
    accepted   INTEGER NOT NULL,
    rejected   INTEGER NOT NULL,
    outcome    TEXT NOT NULL
);
CREATE INDEX audit_at ON audit(at);
"#,
    r#"
-- Bumped by every change that can alter a verification, so that caches (in this process or
-- another) know when to drop what they hold. Audit rows and failed-login counters do not bump it.
CREATE TABLE auth_generation (generation INTEGER NOT NULL);
INSERT INTO auth_generation VALUES (0);
CREATE TRIGGER users_added AFTER INSERT ON users BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER users_removed AFTER DELETE ON users BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER users_password AFTER UPDATE OF password_hash ON users BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER grants_added AFTER INSERT ON grants BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER grants_removed AFTER DELETE ON grants BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER tokens_added AFTER INSERT ON tokens BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER tokens_changed AFTER UPDATE ON tokens BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER tokens_removed AFTER DELETE ON tokens BEGIN UPDATE auth_generation SET generation = generation + 1; END;
"#,
    r#"
-- A lock takes effect at the user's next request, cached login or not.
CREATE TRIGGER users_locked AFTER UPDATE OF locked_until ON users WHEN NEW.locked_until IS NOT NULL
BEGIN UPDATE auth_generation SET generation = generation + 1; END;
"#,
];

/// Opens pragmas and applies pending migrations.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(Error::SchemaTooNew { found: version, supported });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
