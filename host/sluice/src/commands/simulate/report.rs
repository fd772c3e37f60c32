//! What the simulator saw: counts and latency percentiles.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// How one request ended.
pub enum Outcome {
    /// 202 or 422, with the counts from the answer.
    Answered { accepted: u64, rejected: u64 },
    /// 401/403 for a request sent as the unknown user (expected).
    Unauthorized,
    /// Anything else.
    Failed(String),
}

/// Totals of a run.
#[derive(Default)]
pub struct Report {
    pub requests: u64,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub unauthorized: u64,
    pub errors: u64,
    /// Requests sent again after a timeout, a cut connection or a 503 (same idempotency key).
    pub retries: u64,
    /// Answers sluice gave again for a retried request it had already stored.
    pub replayed: u64,
    pub first_errors: Vec<String>,
    pub per_source: BTreeMap<String, (u64, u64)>,
    latencies_us: Vec<u64>,
    pub elapsed: Duration,
}

impl Report {
    /// Counts one request.
    pub fn add(&mut self, source: &str, records: u64, latency: Duration, outcome: Outcome) {
        self.requests += 1;
        self.latencies_us.push(latency.as_micros() as u64);
        match outcome {
            Outcome::Answered { accepted, rejected } => {
                self.records += records;
                self.accepted += accepted;
                self.rejected += rejected;
                let entry = self.per_source.entry(source.to_string()).or_default();
                entry.0 += accepted;
                entry.1 += rejected;
            }
            Outcome::Unauthorized => self.unauthorized += 1,
            Outcome::Failed(reason) => {
                self.errors += 1;
                if self.first_errors.len() < 5 {
                    self.first_errors.push(reason);
                }
            }
        }
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).map_or(0.0, |us| *us as f64 / 1000.0)
    }

    fn per_second(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report as JSON.
    pub fn json(&self, seed: u64) -> Value {
        json!({
            "seed": seed,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests": self.requests,
            "requests_per_s": self.per_second(self.requests),
            "records": self.records,
            "records_per_s": self.per_second(self.records),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "unauthorized": self.unauthorized,
            "errors": self.errors,
            "retries": self.retries,
            "replayed": self.replayed,
            "first_errors": self.first_errors,
            "sources": self.per_source.iter().map(|(s, (a, r))| (s.clone(), json!({"accepted": a, "rejected": r}))).collect::<serde_json::Map<_, _>>(),
            "latency_ms": {
                "p50": self.percentile_ms(0.5),
                "p90": self.percentile_ms(0.9),
                "p99": self.percentile_ms(0.99),
                "max": self.percentile_ms(1.0),
            },
        })
    }

    /// The report for people.
    pub fn text(&self, seed: u64) -> String {
        let mut out = format!(
            "{} requests in {:.2} s ({:.0} requests/s), {} records ({:.0} records/s), seed {seed}\n\
             accepted {}, rejected {}, unauthorized requests {}, failed requests {}, retries {} ({} answered from \
             sluice's memory of the key)\n\
             latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.per_second(self.requests),
            self.records,
            self.per_second(self.records),
            self.accepted,
            self.rejected,
            self.unauthorized,
            self.errors,
            self.retries,
            self.replayed,
            self.percentile_ms(0.5),
            self.percentile_ms(0.9),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
        );
        for (source, (accepted, rejected)) in &self.per_source {
            out.push_str(&format!("\n  {source}: accepted {accepted}, rejected {rejected}"));
        }
        for error in &self.first_errors {
            out.push_str(&format!("\n  error: {error}"));
        }
        out
    }
}
