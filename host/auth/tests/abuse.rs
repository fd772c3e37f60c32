//! Login abuse: concurrent guessing, an attacker behind a good client's address, locks that
//! end cached logins.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use sluice_auth::{AuthError, AuthPolicy, AuthStore, Credentials};

const NAT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic { user: user.into(), password: password.into() }
}

#[test]
fn concurrent_guesses_run_no_more_checks_than_the_limit_and_the_lock_holds() {
    let dir = tempfile::tempdir().unwrap();
    let policy = AuthPolicy { max_failures_per_user: 5, lock_after: 5, ..AuthPolicy::default() };
    let store = Arc::new(AuthStore::open(&dir.path().join("auth.db"), policy).unwrap());
    store.add_user("target", "right-password").unwrap();
    let before = store.password_checks();
    let guesses: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            // Distinct guesses from distinct addresses: nothing shares a cache entry or a
            // per-address count.
            let client = IpAddr::V4(Ipv4Addr::new(10, 9, 0, i));
            std::thread::spawn(move || store.authenticate(&basic("target", &format!("guess-{i}")), client))
        })
        .collect();
    let results: Vec<_> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    assert_eq!(store.password_checks() - before, 5, "only the per-user limit's worth of argon2 checks ran");
    let wrong = results.iter().filter(|r| **r == Err(AuthError::BadPassword)).count();
    let limited = results.iter().filter(|r| matches!(r, Err(AuthError::RateLimited { .. }))).count();
    assert_eq!((wrong, limited), (5, 45), "{results:?}");
    assert!(store.list_users().unwrap()[0].locked_until.is_some(), "five wrong passwords lock the user");
    // The right password is refused, by the rate limit here and by the lock everywhere (another
    // process, with limits of its own, reads the lock from the file).
    let limited = store.authenticate(&basic("target", "right-password"), IpAddr::V4(Ipv4Addr::new(10, 9, 1, 1)));
    assert!(matches!(limited, Err(AuthError::RateLimited { .. })), "{limited:?}");
    let elsewhere = AuthStore::open(&dir.path().join("auth.db"), AuthPolicy::default()).unwrap();
    let locked = elsewhere.authenticate(&basic("target", "right-password"), IpAddr::V4(Ipv4Addr::new(10, 9, 1, 1)));
    assert!(matches!(locked, Err(AuthError::Locked { .. })), "{locked:?}");
}

#[test]
fn an_attacker_behind_the_same_address_does_not_lock_a_known_good_client_out() {
    let dir = tempfile::tempdir().unwrap();
    // Every request verifies in full (no cache), as a client whose cached login expired.
    let policy = AuthPolicy { cache_for: Duration::ZERO, max_failures_per_client: 3, ..AuthPolicy::default() };
    let store = AuthStore::open(&dir.path().join("auth.db"), policy).unwrap();
    store.add_user("ward-7", "good-password").unwrap();
    store.add_user("ward-8", "other-password").unwrap();
    assert!(store.authenticate(&basic("ward-7", "good-password"), NAT).is_ok());

    // Someone behind the same NAT guesses at many names.
    let attacks: Vec<_> = (0..30).map(|i| store.authenticate(&basic(&format!("user-{i}"), "guess-it"), NAT)).collect();
    assert_eq!(attacks.iter().filter(|r| **r == Err(AuthError::BadPassword)).count(), 3);
    assert!(attacks[3..].iter().all(|r| matches!(r, Err(AuthError::RateLimited { .. }))), "{attacks:?}");

    let checks = store.password_checks();
    for _ in 0..5 {
        assert!(store.authenticate(&basic("ward-7", "good-password"), NAT).is_ok(), "the known-good client goes on");
    }
    assert_eq!(store.password_checks() - checks, 5, "each login was verified in full");
    // Credentials that never verified from there are throttled with the attacker's.
    let unknown = store.authenticate(&basic("ward-8", "other-password"), NAT);
    assert!(matches!(unknown, Err(AuthError::RateLimited { .. })), "{unknown:?}");
    // A wrong password for the good client's name is not trusted either.
    let wrong = store.authenticate(&basic("ward-7", "not-the-password"), NAT);
    assert!(matches!(wrong, Err(AuthError::RateLimited { .. })), "{wrong:?}");
}

#[test]
fn a_lock_ends_a_cached_login_at_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let policy = AuthPolicy { lock_after: 3, cache_for: Duration::from_secs(600), ..AuthPolicy::default() };
    let store = AuthStore::open(&dir.path().join("auth.db"), policy.clone()).unwrap();
    store.add_user("ward-7", "good-password").unwrap();
    assert!(store.authenticate(&basic("ward-7", "good-password"), NAT).is_ok());
    assert!(store.authenticate_cached(&basic("ward-7", "good-password")).is_some(), "cached");

    // The guesses come through another process (another instance on the same file).
    let other = AuthStore::open(&dir.path().join("auth.db"), policy).unwrap();
    let elsewhere = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 9));
    for _ in 0..3 {
        assert_eq!(other.authenticate(&basic("ward-7", "guess-it"), elsewhere), Err(AuthError::BadPassword));
    }
    assert!(store.authenticate_cached(&basic("ward-7", "good-password")).is_none(), "the lock dropped the cache");
    let locked = store.authenticate(&basic("ward-7", "good-password"), NAT);
    assert!(matches!(locked, Err(AuthError::Locked { .. })), "{locked:?}");
}

#[test]
fn a_new_password_is_not_held_back_by_failures_against_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let policy = AuthPolicy { max_failures_per_user: 3, cache_for: Duration::ZERO, ..AuthPolicy::default() };
    let server = AuthStore::open(&dir.path().join("auth.db"), policy.clone()).unwrap();
    server.add_user("ward-7", "old-password").unwrap();
    let address = |i: u8| IpAddr::V4(Ipv4Addr::new(10, 7, 0, i));
    for i in 0..3 {
        assert_eq!(server.authenticate(&basic("ward-7", "forgotten"), address(i)), Err(AuthError::BadPassword));
    }
    let limited = server.authenticate(&basic("ward-7", "old-password"), address(9));
    assert!(matches!(limited, Err(AuthError::RateLimited { .. })), "the user's window is full: {limited:?}");

    // `sluice users passwd` runs in another process, on the same file.
    let admin = AuthStore::open(&dir.path().join("auth.db"), policy).unwrap();
    admin.set_password("ward-7", "new-password").unwrap();
    let checks = server.password_checks();
    assert!(
        server.authenticate(&basic("ward-7", "new-password"), address(10)).is_ok(),
        "the new password works at once"
    );
    assert_eq!(server.password_checks() - checks, 1, "verified in full");
    // Guesses at the new password are limited as before, from nothing.
    for i in 11..14 {
        assert_eq!(server.authenticate(&basic("ward-7", "guess"), address(i)), Err(AuthError::BadPassword));
    }
    let limited = server.authenticate(&basic("ward-7", "guess"), address(20));
    assert!(matches!(limited, Err(AuthError::RateLimited { .. })), "{limited:?}");
}
