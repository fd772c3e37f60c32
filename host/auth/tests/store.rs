//! The auth store against a real SQLite file.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use sluice_auth::{AuthError, AuthPolicy, AuthStore, Credentials, Error};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic { user: user.into(), password: password.into() }
}

fn store(dir: &tempfile::TempDir) -> AuthStore {
    AuthStore::open(&dir.path().join("auth.db"), AuthPolicy::default()).unwrap()
}

#[test]
fn users_grants_and_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store.add_user("hospital-a", "s3cret-pass").unwrap();
    assert!(matches!(store.add_user("hospital-a", "another-pass"), Err(Error::UserExists(_))));
    assert!(matches!(store.add_user("Bad Name", "another-pass"), Err(Error::InvalidName { .. })));
    assert!(matches!(store.add_user("short", "123"), Err(Error::WeakPassword { min: 8 })));
    store.grant("hospital-a", "patients").unwrap();
    store.grant("hospital-a", "admissions").unwrap();
    assert!(matches!(store.grant("hospital-a", "../etc"), Err(Error::InvalidName { .. })));
    let users = store.list_users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].sources, vec!["admissions", "patients"]);

    let principal = store.authenticate(&basic("hospital-a", "s3cret-pass"), CLIENT).unwrap();
    assert!(principal.may_post("patients") && !principal.may_post("lab_results"));
    assert_eq!(store.authenticate(&basic("hospital-a", "wrong-pass"), CLIENT), Err(AuthError::BadPassword));
    assert_eq!(store.authenticate(&basic("nobody", "s3cret-pass"), CLIENT), Err(AuthError::BadPassword));

    store.set_password("hospital-a", "new-s3cret-pass").unwrap();
    assert_eq!(store.authenticate(&basic("hospital-a", "s3cret-pass"), CLIENT), Err(AuthError::BadPassword));
    assert!(store.authenticate(&basic("hospital-a", "new-s3cret-pass"), CLIENT).is_ok());
    store.revoke_grant("hospital-a", "patients").unwrap();
    let principal = store.authenticate(&basic("hospital-a", "new-s3cret-pass"), CLIENT).unwrap();
    assert!(!principal.may_post("patients"));
    store.remove_user("hospital-a").unwrap();
    assert_eq!(store.authenticate(&basic("hospital-a", "new-s3cret-pass"), CLIENT), Err(AuthError::BadPassword));
}

#[test]
fn the_password_hash_is_argon2id_and_no_secret_is_stored_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store.add_user("lab", "plaintext-never").unwrap();
    let token = store.create_token("lab", "ci", None).unwrap();
    drop(store);
    let bytes = std::fs::read(dir.path().join("auth.db")).unwrap();
    let wal = std::fs::read(dir.path().join("auth.db-wal")).unwrap_or_default();
    let all = [bytes, wal].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("$argon2id$"));
    assert!(!text.contains("plaintext-never"));
    // `slc_<id>_<secret>`: the secret is URL-safe base64 and may itself hold `_`, so it is
    // everything after the second `_` (taking the last `_`-separated part could leave a few
    // characters that occur in the file by chance).
    let secret = token.token.splitn(3, '_').nth(2).unwrap();
    assert_eq!(secret.len(), 43, "a 256-bit secret");
    assert!(!text.contains(secret));
}

#[test]
fn a_change_from_another_process_invalidates_cached_verifications() {
    let dir = tempfile::tempdir().unwrap();
    let server = store(&dir);
    server.add_user("clinic", "first-password").unwrap();
    server.grant("clinic", "patients").unwrap();
    assert!(server.authenticate(&basic("clinic", "first-password"), CLIENT).is_ok());
    // A second connection, like `sluice users passwd` run while the server is up.
    let admin = store(&dir);
    admin.set_password("clinic", "second-password").unwrap();
    assert_eq!(server.authenticate(&basic("clinic", "first-password"), CLIENT), Err(AuthError::BadPassword));
    assert!(server.authenticate(&basic("clinic", "second-password"), CLIENT).is_ok());
    admin.revoke_grant("clinic", "patients").unwrap();
    assert!(!server.authenticate(&basic("clinic", "second-password"), CLIENT).unwrap().may_post("patients"));
}

#[test]
fn tokens_verify_until_revoked_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store.add_user("lab", "lab-password").unwrap();
    store.grant("lab", "lab_results").unwrap();
    let token = store.create_token("lab", "feed", None).unwrap();
    let principal = store.authenticate(&Credentials::Bearer(token.token.clone()), CLIENT).unwrap();
    assert_eq!(principal.user, "lab");
    let forged = format!("{}x", token.token);
    assert_eq!(store.authenticate(&Credentials::Bearer(forged), CLIENT), Err(AuthError::BadToken));
    store.revoke_token(&token.id).unwrap();
    assert_eq!(store.authenticate(&Credentials::Bearer(token.token.clone()), CLIENT), Err(AuthError::TokenRevoked));
    let expired = store.create_token("lab", "old", Some(chrono::Utc::now() - chrono::TimeDelta::seconds(1))).unwrap();
    assert_eq!(store.authenticate(&Credentials::Bearer(expired.token), CLIENT), Err(AuthError::TokenExpired));
    let listed = store.list_tokens(Some("lab")).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].revoked_at.is_some());
}

#[test]
fn repeated_failures_are_rate_limited_then_lock_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let policy = AuthPolicy {
        max_failures_per_user: 3,
        lock_after: 4,
        failure_window: Duration::from_secs(60),
        ..AuthPolicy::default()
    };
    let store = AuthStore::open(&dir.path().join("auth.db"), policy).unwrap();
    store.add_user("target", "right-password").unwrap();
    for _ in 0..3 {
        assert_eq!(store.authenticate(&basic("target", "guess"), CLIENT), Err(AuthError::BadPassword));
    }
    let limited = store.authenticate(&basic("target", "right-password"), CLIENT);
    assert!(matches!(limited, Err(AuthError::RateLimited { retry_after }) if retry_after <= Duration::from_secs(60)));
    // Another address is not limited, and the fourth wrong password locks the user.
    let other: IpAddr = "10.0.0.9".parse().unwrap();
    let fresh =
        AuthStore::open(&dir.path().join("auth.db"), AuthPolicy { lock_after: 4, ..AuthPolicy::default() }).unwrap();
    assert_eq!(fresh.authenticate(&basic("target", "guess"), other), Err(AuthError::BadPassword));
    let locked = fresh.authenticate(&basic("target", "right-password"), other);
    assert!(matches!(locked, Err(AuthError::Locked { .. })), "{locked:?}");
    assert!(fresh.list_users().unwrap()[0].locked_until.is_some());
    fresh.set_password("target", "reset-password").unwrap();
    assert!(fresh.authenticate(&basic("target", "reset-password"), other).is_ok());
}

#[test]
fn authorization_headers_parse_or_fail_clearly() {
    assert_eq!(Credentials::from_header("Basic dXNlcjpwYXNz").unwrap(), basic("user", "pass"));
    assert_eq!(Credentials::from_header("bearer abc").unwrap(), Credentials::Bearer("abc".into()));
    // `user:pass1` without its `==` padding, as some clients send it.
    assert_eq!(Credentials::from_header("Basic dXNlcjpwYXNzMQ").unwrap(), basic("user", "pass1"));
    assert_eq!(Credentials::from_header("Basic dXNlcjpwYXNzMQ==").unwrap(), basic("user", "pass1"));
    assert_eq!(
        Credentials::from_header("Basic !!!").unwrap_err(),
        AuthError::Malformed("Basic credentials are not base64")
    );
    assert_eq!(
        Credentials::from_header("Digest x").unwrap_err(),
        AuthError::Malformed("expected `Basic …` or `Bearer …`")
    );
    assert_eq!(
        Credentials::from_header("Basic dXNlcg==").unwrap_err(),
        AuthError::Malformed("Basic credentials lack `:`")
    );
}

#[test]
fn a_seed_database_is_imported_with_hashed_passwords_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.db");
    let seed = rusqlite_connection(&seed_path);
    seed.execute_batch(
        "CREATE TABLE api_users (id INTEGER PRIMARY KEY, username TEXT, password TEXT);
         CREATE TABLE api_list (id INTEGER PRIMARY KEY, api_name TEXT);
         CREATE TABLE map_users_api (user_id INTEGER, api_id INTEGER);
         INSERT INTO api_users VALUES (1, 'hospital', 'hospital-pass'), (2, 'lab', 'lab-password');
         INSERT INTO api_list VALUES (1, 'api_admissions'), (2, 'api_patient'), (3, 'api_lab_results');
         INSERT INTO map_users_api VALUES (1, 1), (1, 2), (2, 3);",
    )
    .unwrap();
    drop(seed);
    let store = store(&dir);
    let report = store.import_seed(&seed_path).unwrap();
    assert_eq!(report.users, vec!["hospital", "lab"]);
    let grants: Vec<(String, String)> =
        store.list_grants(None).unwrap().into_iter().map(|g| (g.user, g.source)).collect();
    assert_eq!(
        grants,
        vec![
            ("hospital".into(), "admissions".into()),
            ("hospital".into(), "patients".into()),
            ("lab".into(), "lab_results".into())
        ]
    );
    assert!(store.authenticate(&basic("lab", "lab-password"), CLIENT).unwrap().may_post("lab_results"));
    assert_eq!(store.import_seed(&seed_path).unwrap().skipped, vec!["hospital", "lab"]);
}

fn rusqlite_connection(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn verifications_are_cached_across_audit_writes_and_dropped_on_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store.add_user("clinic", "clinic-password").unwrap();
    for i in 0..5 {
        assert!(store.authenticate(&basic("clinic", "clinic-password"), CLIENT).is_ok());
        store.audit(sluice_auth::AuditEntry {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            user: Some("clinic".into()),
            source: None,
            request_id: format!("r{i}"),
            client: None,
            accepted: 1,
            rejected: 0,
            outcome: sluice_auth::Outcome::Accepted,
            detail: None,
            attempts: 1,
        });
        store.recent_audit(1).unwrap(); // waits until the row is written
    }
    assert_eq!(store.password_checks(), 1, "one argon2 verification, then the cache");
    store.grant("clinic", "patients").unwrap();
    assert!(store.authenticate(&basic("clinic", "clinic-password"), CLIENT).unwrap().may_post("patients"));
    assert_eq!(store.password_checks(), 2, "a grant drops the cache");
}

/// When a verification is not cached (first use, or its entry expired), the connections using
/// those credentials wait for one argon2 computation instead of each running their own (each
/// takes ~19 MiB: eight at once were a 150 MiB spike in the pipeline bench).
#[test]
fn concurrent_first_uses_of_the_same_credentials_share_one_verification() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store.add_user("clinic", "clinic-password").unwrap();
    store.grant("clinic", "patients").unwrap();
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                start.wait();
                let principal = store.authenticate(&basic("clinic", "clinic-password"), CLIENT).unwrap();
                assert!(principal.may_post("patients"));
            });
        }
    });
    assert_eq!(store.password_checks(), 1, "one argon2 verification for eight concurrent requests");
    // Wrong passwords are never cached: each is checked (and counted by the limiter).
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let refused = store.authenticate(&basic("clinic", "wrong-password"), CLIENT);
                assert!(matches!(refused, Err(AuthError::BadPassword)), "{refused:?}");
            });
        }
    });
    assert_eq!(store.password_checks(), 3);
}

fn failed_login(client: &str, user: Option<&str>, detail: &str, request_id: String) -> sluice_auth::AuditEntry {
    sluice_auth::AuditEntry {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        user: user.map(str::to_string),
        source: Some("patients".into()),
        request_id,
        client: Some(client.into()),
        accepted: 0,
        rejected: 0,
        outcome: sluice_auth::Outcome::AuthFailed,
        detail: Some(detail.into()),
        attempts: 1,
    }
}

/// A flood of the same failed login (a sender without credentials in a retry loop, a password
/// guesser) adds a row for the first and one counting the rest, not a row each; distinct
/// failures and answered requests keep a row each.
#[test]
fn repeated_failed_logins_are_counted_on_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    for i in 0..500 {
        store.audit(failed_login("10.0.0.1", None, "missing", format!("m{i}")));
    }
    for i in 0..3 {
        store.audit(failed_login("10.0.0.1", Some("ward-7"), "bad_password", format!("p{i}")));
    }
    store.audit(failed_login("10.0.0.2", None, "missing", "other".into()));
    // A client varying what it may choose freely (the name in a refused attempt, the source in
    // the path) is one client all the same.
    for i in 0..100 {
        store.audit(sluice_auth::AuditEntry {
            source: Some(format!("source-{i}")),
            ..failed_login("10.0.0.3", Some(&format!("name-{i}")), "rate_limited", format!("r{i}"))
        });
    }
    for i in 0..3 {
        store.audit(sluice_auth::AuditEntry {
            outcome: sluice_auth::Outcome::Accepted,
            detail: None,
            ..failed_login("10.0.0.1", Some("ward-7"), "-", format!("a{i}"))
        });
    }
    let rows = store.recent_audit(1000).unwrap();
    let mut seen: Vec<(String, String, String, u64)> = rows
        .iter()
        .map(|r| {
            let detail = r.detail.clone().unwrap_or_else(|| r.outcome.as_str().to_string());
            (r.client.clone().unwrap(), detail, r.request_id.clone(), r.attempts)
        })
        .collect();
    seen.sort();
    let row = |client: &str, detail: &str, id: &str, attempts| (client.into(), detail.into(), id.into(), attempts);
    assert_eq!(
        seen,
        [
            row("10.0.0.1", "accepted", "a0", 1),
            row("10.0.0.1", "accepted", "a1", 1),
            row("10.0.0.1", "accepted", "a2", 1),
            row("10.0.0.1", "bad_password", "p0", 1),
            row("10.0.0.1", "bad_password", "p2", 2),
            row("10.0.0.1", "missing", "m0", 1),
            row("10.0.0.1", "missing", "m499", 499),
            row("10.0.0.2", "missing", "other", 1),
            row("10.0.0.3", "rate_limited", "r0", 1),
            row("10.0.0.3", "rate_limited", "r99", 99),
        ],
        "the row of repeats carries the last one's request id"
    );
    // Counting goes on after a flush: the next repeat starts a window of its own.
    store.audit(failed_login("10.0.0.1", None, "missing", "m500".into()));
    let rows = store.recent_audit(1).unwrap();
    assert_eq!((rows[0].request_id.as_str(), rows[0].attempts), ("m500", 1));
}

/// Rows older than `auth.audit_retention` are deleted while the writer works; `0s` keeps all.
#[test]
fn audit_rows_past_the_retention_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let days_ago = |days: i64| {
        (chrono::Utc::now() - chrono::TimeDelta::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };
    let entry = |at: String, id: &str| sluice_auth::AuditEntry {
        at,
        outcome: sluice_auth::Outcome::Accepted,
        detail: None,
        ..failed_login("10.0.0.1", Some("ward-7"), "-", id.into())
    };
    {
        let keep_all = AuthStore::open(&path, AuthPolicy { audit_retention: Duration::ZERO, ..AuthPolicy::default() });
        let keep_all = keep_all.unwrap();
        keep_all.audit(entry(days_ago(1000), "ancient"));
        keep_all.audit(entry(days_ago(31), "old"));
        let ids: Vec<String> = keep_all.recent_audit(10).unwrap().into_iter().map(|r| r.request_id).collect();
        assert_eq!(ids, ["old", "ancient"], "0s keeps every row");
    }
    let month = AuthPolicy { audit_retention: Duration::from_secs(30 * 86_400), ..AuthPolicy::default() };
    {
        // A process that only reads the log (`sluice audit`, any admin command) deletes nothing,
        // whatever retention its own configuration says.
        let reader = AuthStore::open(&path, month.clone()).unwrap();
        assert_eq!(reader.audit_rows(&sluice_auth::AuditFilter::default(), 10).unwrap().len(), 2);
    }
    let ids: Vec<String> = AuthStore::open(&path, month.clone())
        .unwrap()
        .recent_audit(10)
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(ids, ["old", "ancient"], "reading deleted nothing");
    let store = AuthStore::open(&path, month).unwrap();
    store.audit(entry(days_ago(29), "recent"));
    store.audit(entry(days_ago(0), "today"));
    let ids: Vec<String> = store.recent_audit(10).unwrap().into_iter().map(|r| r.request_id).collect();
    assert_eq!(ids, ["today", "recent"], "rows older than 30 days are gone, the others kept");
}
