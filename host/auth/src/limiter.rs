//! Limits on failed logins: a sliding window per user name and per client address, and a lock
//! after consecutive failures.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Thresholds for failed logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Window over which failures are counted (default 60 s).
    pub failure_window: Duration,
    /// Failures per user name within the window before 429 (default 5).
    pub max_failures_per_user: usize,
    /// Failures per client address within the window before 429 (default 20).
    pub max_failures_per_client: usize,
    /// Consecutive failures after which the user is locked (default 10).
    pub lock_after: u32,
    /// How long a lock lasts (default 15 min).
    pub lock_for: Duration,
    /// How long a successful verification is cached (default 60 s).
    pub cache_for: Duration,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            failure_window: Duration::from_secs(60),
            max_failures_per_user: 5,
            max_failures_per_client: 20,
            lock_after: 10,
            lock_for: Duration::from_secs(15 * 60),
            cache_for: Duration::from_secs(60),
        }
    }
}

/// Recent failures per key.
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    by_user: HashMap<String, VecDeque<Instant>>,
    by_client: HashMap<IpAddr, VecDeque<Instant>>,
}

fn retry_after(times: &mut VecDeque<Instant>, window: Duration, max: usize, now: Instant) -> Option<Duration> {
    while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
        times.pop_front();
    }
    (times.len() >= max).then(|| window.saturating_sub(now.duration_since(*times.front().expect("non-empty"))))
}

impl FailureLimiter {
    /// Whether another attempt is allowed now; if not, how long to wait.
    pub(crate) fn check(&mut self, policy: &AuthPolicy, user: Option<&str>, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let by_client = self
            .by_client
            .get_mut(&client)
            .and_then(|t| retry_after(t, policy.failure_window, policy.max_failures_per_client, now));
        let by_user = user
            .and_then(|u| self.by_user.get_mut(u))
            .and_then(|t| retry_after(t, policy.failure_window, policy.max_failures_per_user, now));
        by_client.max(by_user)
    }

    /// Records a failure.
    pub(crate) fn record(&mut self, user: Option<&str>, client: IpAddr) {
        let now = Instant::now();
        self.by_client.entry(client).or_default().push_back(now);
        if let Some(user) = user {
            self.by_user.entry(user.to_string()).or_default().push_back(now);
        }
        // Bound memory under a flood of distinct names or addresses.
        if self.by_user.len() > 100_000 || self.by_client.len() > 100_000 {
            self.by_user.clear();
            self.by_client.clear();
        }
    }
}
