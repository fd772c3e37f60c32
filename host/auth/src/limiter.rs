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
        }
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

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else { return self.0.clone() };
        let Some((credentials, host)) = rest.rsplit_once('@') else { return self.0.clone() };
        let user = credentials.split(':').next().unwrap_or_default();
        format!("{scheme}://{user}:***@{host}")
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Recent failures per user name and per client address, and the credentials that verified
/// recently.
///
/// An attempt is counted as a failure *before* its password is checked ([`begin`]), under one
/// lock, so that concurrent guesses cannot all pass the check before any is counted; a success
/// takes its count back ([`succeeded`]). Credentials that verified within
/// [`AuthPolicy::trust_for`] skip the limits: a known-good client behind the same address as an
/// attacker (a hospital's NAT, a proxy) is not throttled with them. The lock after consecutive
/// failures still applies to everyone.
///
/// [`begin`]: FailureLimiter::begin
/// [`succeeded`]: FailureLimiter::succeeded
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    by_user: HashMap<String, VecDeque<Instant>>,
    by_client: HashMap<IpAddr, VecDeque<Instant>>,
    /// Credentials (their cache key) that verified, and when.
    trusted: HashMap<[u8; 32], Instant>,
}

/// A verification under way, counted as a failure until it succeeds.
#[derive(Debug)]
pub(crate) struct Attempt {
    user: Option<String>,
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

impl FailureLimiter {
    /// Starts a verification of `credentials` (their cache key) claiming `user` from `client`:
    /// refused with how long to wait when the limits are reached, else counted as a failure
    /// until [`succeeded`](Self::succeeded) is called.
    pub(crate) fn begin(
        &mut self,
        policy: &AuthPolicy,
        credentials: &[u8; 32],
        user: Option<&str>,
        client: IpAddr,
    ) -> Result<Attempt, Duration> {
        let now = Instant::now();
        if self.trusted.get(credentials).is_some_and(|at| now.duration_since(*at) < policy.trust_for) {
            return Ok(Attempt { user: None, client, at: now, counted: false });
        }
        let by_client = self
            .by_client
            .get_mut(&client)
            .and_then(|t| retry_after(t, policy.failure_window, policy.max_failures_per_client, now));
        let by_user = user
            .and_then(|u| self.by_user.get_mut(u))
            .and_then(|t| retry_after(t, policy.failure_window, policy.max_failures_per_user, now));
        if let Some(wait) = by_client.max(by_user) {
            return Err(wait);
        }
        self.by_client.entry(client).or_default().push_back(now);
        if let Some(user) = user {
            self.by_user.entry(user.to_string()).or_default().push_back(now);
        }
        // Bound memory under a flood of distinct names or addresses.
        if self.by_user.len() > 100_000 || self.by_client.len() > 100_000 {
            self.by_user.clear();
            self.by_client.clear();
        }
        Ok(Attempt { user: user.map(str::to_string), client, at: now, counted: true })
    }

    /// The attempt verified: its failure count is taken back and the credentials are trusted.
    pub(crate) fn succeeded(&mut self, attempt: Attempt, credentials: [u8; 32]) {
        if attempt.counted {
            forget(self.by_client.get_mut(&attempt.client), attempt.at);
            forget(attempt.user.as_deref().and_then(|u| self.by_user.get_mut(u)), attempt.at);
        }
        if self.trusted.len() > 100_000 {
            self.trusted.clear();
        }
        self.trusted.insert(credentials, Instant::now());
    }

    /// The attempt did not count after all (a locked user: no password was checked).
    pub(crate) fn not_counted(&mut self, attempt: Attempt) {
        if attempt.counted {
            forget(self.by_client.get_mut(&attempt.client), attempt.at);
            forget(attempt.user.as_deref().and_then(|u| self.by_user.get_mut(u)), attempt.at);
        }
    }

    /// Forgets trusted credentials: a password, grant or token changed, or a user was locked.
    pub(crate) fn distrust_all(&mut self) {
        self.trusted.clear();
    }
}
