//! Limits on failed logins: a sliding window per user name and per client address, and a lock
//! after consecutive failures.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `[auth]`: where users live, thresholds for failed logins, and how long verifications are
/// cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthPolicy {
    /// The shared store of several instances, `postgres://user:password@host:port/database`;
    /// empty (the default): the embedded SQLite file `DATA_DIR/auth.db`. Give it through the
    /// environment (`SLUICE__AUTH__URL`), not a file, since it holds a password.
    pub url: DatabaseUrl,
    /// A file whose first line is the password for `url` (a container secret), so that the
    /// URL itself holds none.
    pub password_file: Option<std::path::PathBuf>,
    /// Certificates (PEM) the PostgreSQL server's certificate must chain to, for a server with
    /// a certificate of the hospital's own authority; without it, the Mozilla roots. Whether
    /// TLS is used at all is the URL's `sslmode` (`disable`, `prefer` (default), `require`).
    pub postgres_ca: Option<std::path::PathBuf>,
    /// Window over which failures are counted (default 60 s).
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// Failures per user name within the window before 429 (default 5).
    pub max_failures_per_user: usize,
    /// Failures per client address within the window before 429 (default 20).
    pub max_failures_per_client: usize,
    /// Consecutive failures after which the user is locked (default 10).
    pub lock_after: u32,
    /// How long a lock lasts (default 15 min).
    #[serde(with = "humantime_serde")]
    pub lock_for: Duration,
    /// How long a successful verification is cached (default 60 s).
    #[serde(with = "humantime_serde")]
    pub cache_for: Duration,
    /// How long credentials that verified skip the failure limits (default a day): a client
    /// behind the same address as an attacker keeps logging in. Any change to users, grants or
    /// tokens forgets them.
    #[serde(with = "humantime_serde")]
    pub trust_for: Duration,
    /// How long audit rows are kept (default 400 days: a year's review and then some); older
    /// ones are deleted while the server works. `0s` keeps every row: archive and delete them
    /// yourself, or the audit log grows with every request for as long as sluice runs.
    #[serde(with = "humantime_serde")]
    pub audit_retention: Duration,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::default(),
            password_file: None,
            postgres_ca: None,
            failure_window: Duration::from_secs(60),
            max_failures_per_user: 5,
            max_failures_per_client: 20,
            lock_after: 10,
            lock_for: Duration::from_secs(15 * 60),
            cache_for: Duration::from_secs(60),
            trust_for: Duration::from_secs(24 * 3600),
            audit_retention: Duration::from_secs(400 * 24 * 3600),
        }
    }
}

impl AuthPolicy {
    /// Checks what the types cannot: a failure window (without one the failure limits never
    /// apply) and limits of at least one failure.
    pub fn check(&self) -> Result<(), sluice_config::ValueError> {
        sluice_config::check(
            "auth",
            [
                ("failure_window", "at least 1s", self.failure_window < Duration::from_secs(1)),
                ("max_failures_per_user", "at least 1", self.max_failures_per_user == 0),
                ("max_failures_per_client", "at least 1", self.max_failures_per_client == 0),
                ("lock_after", "at least 1", self.lock_after == 0),
            ],
        )
    }
}

/// A database URL whose password never shows in logs or debug output.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// The URL, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `***` ([`sluice_config::without_password`]).
    pub fn redacted(&self) -> String {
        sluice_config::without_password(&self.0)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Recent failures per user password and per client address, and the credentials that
/// verified recently.
///
/// An attempt is counted as a failure *before* its password is checked, under one lock, so that
/// concurrent guesses cannot all pass the check before any is counted: against its client when it
/// begins ([`begin`]), against the user's password once the user's row is read
/// ([`count_user`]); a success takes both back ([`succeeded`]). The per-user count is kept per
/// password (the stored hash's fingerprint): a new password (`sluice users passwd`) starts with
/// no failures, where the old one's would have refused it until the window passed. Credentials
/// that verified within [`AuthPolicy::trust_for`] skip the limits: a known-good client behind the
/// same address as an attacker (a hospital's NAT, a proxy) is not throttled with them. The lock
/// after consecutive failures still applies to everyone.
///
/// [`begin`]: FailureLimiter::begin
/// [`count_user`]: FailureLimiter::count_user
/// [`succeeded`]: FailureLimiter::succeeded
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    /// Keyed by user name and the fingerprint of the password hash the failures were against.
    by_user: HashMap<(String, u64), VecDeque<Instant>>,
    by_client: HashMap<IpAddr, VecDeque<Instant>>,
    /// Credentials (their cache key) that verified, and when.
    trusted: HashMap<[u8; 32], Instant>,
}

/// A verification under way, counted as a failure until it succeeds.
#[derive(Debug)]
pub(crate) struct Attempt {
    user: Option<(String, u64)>,
    client: IpAddr,
    at: Instant,
    counted: bool,
}

fn retry_after(times: &mut VecDeque<Instant>, window: Duration, max: usize, now: Instant) -> Option<Duration> {
    while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
        times.pop_front();
    }
    (times.len() >= max).then(|| window.saturating_sub(now.duration_since(*times.front().expect("non-empty"))))
}

fn forget(times: Option<&mut VecDeque<Instant>>, at: Instant) {
    if let Some(times) = times
        && let Some(i) = times.iter().rposition(|t| *t == at)
    {
        times.remove(i);
    }
}

/// The fingerprint a per-user count is kept under: of the stored password hash, `None` for a
/// name that has no user (counted all the same, so that a refusal tells nothing of which exist).
pub(crate) fn password_fingerprint(hash: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    hash.hash(&mut hasher);
    hasher.finish()
}

impl FailureLimiter {
    /// Starts a verification of `credentials` (their cache key) from `client`: refused with how
    /// long to wait when the client's limit is reached, else counted as a failure until
    /// [`succeeded`](Self::succeeded) is called.
    pub(crate) fn begin(
        &mut self,
        policy: &AuthPolicy,
        credentials: &[u8; 32],
        client: IpAddr,
    ) -> Result<Attempt, Duration> {
        let now = Instant::now();
        if self.trusted.get(credentials).is_some_and(|at| now.duration_since(*at) < policy.trust_for) {
            return Ok(Attempt { user: None, client, at: now, counted: false });
        }
        if let Some(wait) = self
            .by_client
            .get_mut(&client)
            .and_then(|t| retry_after(t, policy.failure_window, policy.max_failures_per_client, now))
        {
            return Err(wait);
        }
        self.by_client.entry(client).or_default().push_back(now);
        self.bound_memory();
        Ok(Attempt { user: None, client, at: now, counted: true })
    }

    /// Counts `attempt` against `user`'s password (its hash's [`password_fingerprint`]) too:
    /// refused with how long to wait when that password's limit is reached (the attempt then
    /// counts for nothing). Trusted credentials are not counted.
    pub(crate) fn count_user(
        &mut self,
        policy: &AuthPolicy,
        attempt: &mut Attempt,
        user: &str,
        password: u64,
    ) -> Result<(), Duration> {
        if !attempt.counted {
            return Ok(());
        }
        let key = (user.to_string(), password);
        let now = Instant::now();
        if let Some(wait) = self
            .by_user
            .get_mut(&key)
            .and_then(|t| retry_after(t, policy.failure_window, policy.max_failures_per_user, now))
        {
            forget(self.by_client.get_mut(&attempt.client), attempt.at);
            attempt.counted = false;
            return Err(wait);
        }
        self.by_user.entry(key.clone()).or_default().push_back(attempt.at);
        attempt.user = Some(key);
        self.bound_memory();
        Ok(())
    }

    /// Bounds memory under a flood of distinct names or addresses.
    fn bound_memory(&mut self) {
        if self.by_user.len() > 100_000 || self.by_client.len() > 100_000 {
            self.by_user.clear();
            self.by_client.clear();
        }
    }

    /// The attempt verified: its failure count is taken back and the credentials are trusted.
    pub(crate) fn succeeded(&mut self, attempt: Attempt, credentials: [u8; 32]) {
        self.not_counted(attempt);
        if self.trusted.len() > 100_000 {
            self.trusted.clear();
        }
        self.trusted.insert(credentials, Instant::now());
    }

    /// The attempt did not count after all (a locked user: no password was checked).
    pub(crate) fn not_counted(&mut self, attempt: Attempt) {
        if attempt.counted {
            forget(self.by_client.get_mut(&attempt.client), attempt.at);
            forget(attempt.user.as_ref().and_then(|u| self.by_user.get_mut(u)), attempt.at);
        }
    }

    /// Forgets trusted credentials: a password, grant or token changed, or a user was locked.
    pub(crate) fn distrust_all(&mut self) {
        self.trusted.clear();
    }
}
