//! The auth store on a real PostgreSQL server (`tests/services/postgres.sh`), as several sluice
//! instances share it: each test gets a database of its own.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_auth::{AuditEntry, AuthError, AuthPolicy, AuthStore, Credentials, Error, GENERATION_POLL, Outcome};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A fresh database on the test server; its URL.
fn database() -> String {
    let url = std::env::var("SLUICE_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!("SLUICE_TEST_POSTGRES is not set: start PostgreSQL with tests/services/postgres.sh (tests/run does)")
    });
    let name =
        format!("auth{}x{}", std::process::id(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic { user: user.into(), password: password.into() }
}

#[test]
fn the_shared_store_keeps_users_grants_tokens_and_the_audit_log() {
    let url = database();
    let store = AuthStore::open_postgres(&url, AuthPolicy::default()).unwrap();
    assert!(store.is_shared());
    store.add_user("hospital-a", "s3cret-pass").unwrap();
    assert!(matches!(store.add_user("hospital-a", "another-pass"), Err(Error::UserExists(_))));
    store.grant("hospital-a", "patients").unwrap();
    store.grant("hospital-a", "admissions").unwrap();
    store.grant("hospital-a", "admissions").unwrap();
    let users = store.list_users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].sources, vec!["admissions", "patients"]);
    let principal = store.authenticate(&basic("hospital-a", "s3cret-pass"), CLIENT).unwrap();
    assert!(principal.may_post("patients") && !principal.may_post("labs"));
    assert_eq!(store.authenticate(&basic("hospital-a", "wrong-pass"), CLIENT), Err(AuthError::BadPassword));
    assert_eq!(store.authenticate(&basic("nobody", "s3cret-pass"), CLIENT), Err(AuthError::BadPassword));

    let token = store.create_token("hospital-a", "feed", None).unwrap();
    let bearer = Credentials::Bearer(token.token.clone());
    assert_eq!(store.authenticate(&bearer, CLIENT).unwrap().user, "hospital-a");
    assert_eq!(store.list_tokens(Some("hospital-a")).unwrap().len(), 1);
    store.revoke_token(&token.id).unwrap();
    assert_eq!(store.authenticate(&bearer, CLIENT), Err(AuthError::TokenRevoked));
    assert!(matches!(store.revoke_token(&token.id), Err(Error::NoSuchToken(_))));

    store.revoke_grant("hospital-a", "patients").unwrap();
    assert_eq!(store.list_grants(None).unwrap().len(), 1);
    assert!(matches!(store.revoke_grant("hospital-a", "patients"), Err(Error::NoSuchGrant(..))));

    store.audit(AuditEntry {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        user: Some("hospital-a".into()),
        source: Some("admissions".into()),
        request_id: "r1".into(),
        client: None,
        accepted: 3,
        rejected: 1,
        outcome: Outcome::Accepted,
        detail: None,
        attempts: 1,
    });
    let audit = store.recent_audit(10).unwrap();
    assert_eq!(audit[0].request_id, "r1");
    assert_eq!((audit[0].accepted, audit[0].rejected, audit[0].outcome), (3, 1, Outcome::Accepted));
    assert_eq!(audit[0].client, None);
    // Filters in PostgreSQL's dialect (`"user"`, `$N` placeholders, text times).
    let filter = |user: &str, outcome| sluice_auth::AuditFilter {
        since: Some(chrono::Utc::now() - chrono::TimeDelta::hours(1)),
        user: Some(user.into()),
        outcome: Some(outcome),
        ..Default::default()
    };
    let selected = store.audit_rows(&filter("hospital-a", Outcome::Accepted), 10).unwrap();
    assert_eq!(selected.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(), ["r1"]);
    assert!(store.audit_rows(&filter("hospital-a", Outcome::Rejected), 10).unwrap().is_empty());
    assert!(store.audit_rows(&filter("hospital-b", Outcome::Accepted), 10).unwrap().is_empty());
    // Rows past the retention are deleted (PostgreSQL's dialect of the trim), repeated failed
    // logins counted on one row.
    let month = AuthPolicy { audit_retention: Duration::from_secs(30 * 86_400), ..AuthPolicy::default() };
    let trimming = AuthStore::open_postgres(&url, month).unwrap();
    let old = (chrono::Utc::now() - chrono::TimeDelta::days(31)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    trimming.audit(AuditEntry { at: old, request_id: "old".into(), ..audit[0].clone() });
    for i in 0..5 {
        trimming.audit(AuditEntry {
            request_id: format!("f{i}"),
            outcome: Outcome::AuthFailed,
            detail: Some("missing".into()),
            client: Some("10.0.0.9".into()),
            ..audit[0].clone()
        });
    }
    let rows: Vec<(String, u64)> =
        trimming.recent_audit(10).unwrap().into_iter().map(|r| (r.request_id, r.attempts)).collect();
    assert_eq!(rows, [("f4".to_string(), 4), ("f0".to_string(), 1), ("r1".to_string(), 1)]);

    store.remove_user("hospital-a").unwrap();
    assert!(store.list_users().unwrap().is_empty());
    assert!(store.list_grants(None).unwrap().is_empty(), "grants go with their user");
}

/// Instances starting together migrate once; a change made through one instance (a revoked
/// token, a withdrawn grant, a lock after failed logins) takes effect on the others within
/// the generation poll, cached verifications included.
#[test]
fn changes_on_one_instance_take_effect_on_the_others_within_the_poll() {
    let url = database();
    // Only the lock (in the database) stops the guesses below, not this instance's own limits.
    let policy = AuthPolicy {
        cache_for: Duration::from_secs(600),
        max_failures_per_user: 1000,
        max_failures_per_client: 1000,
        ..AuthPolicy::default()
    };
    let stores: Vec<AuthStore> = std::thread::scope(|s| {
        let opening: Vec<_> = (0..3).map(|_| s.spawn(|| AuthStore::open_postgres(&url, policy.clone()))).collect();
        opening.into_iter().map(|o| o.join().unwrap().unwrap()).collect()
    });
    let (a, b, c) = (&stores[0], &stores[1], &stores[2]);
    a.add_user("lab", "s3cret-pass").unwrap();
    a.grant("lab", "labs").unwrap();
    let token = a.create_token("lab", "feed", None).unwrap();
    let bearer = Credentials::Bearer(token.token.clone());
    assert!(b.authenticate(&bearer, CLIENT).unwrap().may_post("labs"));
    assert!(b.authenticate_cached(&bearer).is_some(), "cached on b");

    let revoked = Instant::now();
    c.revoke_token(&token.id).unwrap();
    let deadline = revoked + GENERATION_POLL * 5;
    while b.authenticate(&bearer, CLIENT).is_ok() {
        assert!(Instant::now() < deadline, "b still accepts a token c revoked");
        std::thread::yield_now();
    }
    println!("a revocation took effect on another instance after {:?}", revoked.elapsed());
    assert_eq!(b.authenticate(&bearer, CLIENT), Err(AuthError::TokenRevoked));

    // Failed logins on one instance lock the user on all of them.
    let login = basic("lab", "s3cret-pass");
    assert!(b.authenticate(&login, CLIENT).is_ok());
    let attacker = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    let lock_after = AuthPolicy::default().lock_after;
    for _ in 0..lock_after {
        assert_eq!(a.authenticate(&basic("lab", "wrong-pass"), attacker), Err(AuthError::BadPassword));
    }
    let deadline = Instant::now() + GENERATION_POLL * 5;
    loop {
        match b.authenticate(&login, CLIENT) {
            Err(AuthError::Locked { .. }) => break,
            Ok(_) => assert!(Instant::now() < deadline, "b still lets a user a locked in"),
            Err(other) => panic!("unexpected {other:?}"),
        }
        std::thread::yield_now();
    }
    assert!(matches!(c.authenticate(&login, CLIENT), Err(AuthError::Locked { .. })));
}

#[test]
fn an_unreachable_or_malformed_url_is_refused_at_open() {
    let closed = AuthStore::open_postgres("postgres://sluice:x@127.0.0.1:1/sluice", AuthPolicy::default());
    assert!(matches!(closed, Err(Error::Postgres(_))), "{:?}", closed.err());
    let wrong = AuthStore::open_postgres("mysql://127.0.0.1/sluice", AuthPolicy::default());
    assert!(matches!(wrong, Err(Error::InvalidUrl(_))), "{:?}", wrong.err());
}

/// A key claimed on one instance is refused on another until it is released or its claim
/// expires (its instance died holding it).
#[test]
fn claims_are_shared_released_and_expire() {
    let url = database();
    let a = AuthStore::open_postgres(&url, AuthPolicy::default()).unwrap();
    let b = AuthStore::open_postgres(&url, AuthPolicy::default()).unwrap();
    let minute = Duration::from_secs(60);
    assert!(a.claim("labs\nlab\nk1", "a1", minute).unwrap());
    assert!(!b.claim("labs\nlab\nk1", "b1", minute).unwrap(), "held on a");
    assert!(b.claim("labs\nlab\nk2", "b1", minute).unwrap(), "another key is free");
    b.release("labs\nlab\nk1", "b1").unwrap();
    assert!(!b.claim("labs\nlab\nk1", "b2", minute).unwrap(), "only its holder releases a claim");
    a.release("labs\nlab\nk1", "a1").unwrap();
    assert!(b.claim("labs\nlab\nk1", "b3", minute).unwrap(), "released on a, free on b");
    // A claim whose instance died runs out.
    assert!(a.claim("labs\nlab\nk3", "dead", Duration::ZERO).unwrap());
    assert!(b.claim("labs\nlab\nk3", "b4", minute).unwrap(), "an expired claim is taken over");
}

/// A fresh database on the TLS test server (`SLUICE_POSTGRES_TLS=1 tests/services/postgres.sh`
/// on its own port); its URL (without `sslmode`) and the certificate authority's PEM file.
fn tls_database() -> (String, std::path::PathBuf) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: start the TLS PostgreSQL with tests/services/postgres.sh (tests/run does)")
        })
    };
    let (url, ca) = (var("SLUICE_TEST_POSTGRES_TLS"), var("SLUICE_TEST_POSTGRES_CA"));
    let name =
        format!("tls{}x{}", std::process::id(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos());
    let mut admin = postgres::Client::connect(&format!("{url}?sslmode=disable"), postgres::NoTls).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    (format!("{base}/{name}"), ca.into())
}

/// The server's count of connections to `database` that use TLS, and of those that do not.
fn connections_by_tls(admin_url: &str, database: &str) -> (i64, i64) {
    let mut admin = postgres::Client::connect(&format!("{admin_url}?sslmode=disable"), postgres::NoTls).unwrap();
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
            &[&database],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn a_server_with_tls_is_used_over_tls_and_its_certificate_is_verified() {
    let (url, ca) = tls_database();
    let database = url.rsplit_once('/').unwrap().1.to_string();
    let admin_url = std::env::var("SLUICE_TEST_POSTGRES_TLS").unwrap();
    let with_ca = AuthPolicy { postgres_ca: Some(ca.clone()), ..AuthPolicy::default() };

    // The server's certificate is of the hospital's own authority: not among the Mozilla roots.
    // Refused whether TLS is required or only preferred (never used without TLS instead), and
    // nothing is created.
    for mode in ["require", "prefer"] {
        let error = AuthStore::open_postgres(&format!("{url}?sslmode={mode}"), AuthPolicy::default()).err().unwrap();
        assert_eq!(
            error.to_string(),
            "auth database (PostgreSQL) error: error performing TLS handshake: invalid peer certificate: UnknownIssuer",
            "sslmode={mode}"
        );
    }
    let mut admin = postgres::Client::connect(&format!("{url}?sslmode=disable"), postgres::NoTls).unwrap();
    let tables: i64 = admin
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a refused connection created nothing");
    drop(admin);

    // With the authority given, every connection of the store (statements, audit, claims, the
    // generation poller) is encrypted, by default (`prefer`) as with `require`.
    // So with libpq's spelling in the URL: `verify-full` and the authority as `sslrootcert`.
    let libpq = format!("?sslmode=verify-full&sslrootcert={}", ca.display());
    for (number, (mode, policy)) in
        [("", &with_ca), ("?sslmode=require", &with_ca), (libpq.as_str(), &AuthPolicy::default())]
            .into_iter()
            .enumerate()
    {
        let store = AuthStore::open_postgres(&format!("{url}{mode}"), policy.clone()).unwrap();
        store.add_user(&format!("ward{number}"), "s3cret-pass").unwrap();
        let (encrypted, plain) = connections_by_tls(&admin_url, &database);
        assert!(encrypted >= 4 && plain == 0, "{mode}: {encrypted} over TLS, {plain} without");
        drop(store);
    }
    let users = AuthStore::open_postgres(&url, with_ca).unwrap().list_users().unwrap();
    assert_eq!(users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), vec!["ward0", "ward1", "ward2"]);

    // `disable` is plain, as asked.
    let store = AuthStore::open_postgres(&format!("{url}?sslmode=disable"), AuthPolicy::default()).unwrap();
    assert_eq!(store.list_users().unwrap().len(), 3);
}
