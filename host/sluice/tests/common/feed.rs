//! Posting records the way a sender does, tracking what was acknowledged: single posts and a
//! feeder thread of lab results with known AdmissionIDs, for exactly-once checks.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

/// The password of the `feeder` user the tests create.
pub const PASSWORD: &str = "feeder-password-1";

/// What one POST came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    /// 202 with this many accepted.
    Accepted(usize),
    /// Another status, with the body.
    Status(u16, String),
    /// Nothing reached the server (connection refused): certainly not accepted.
    NotSent,
    /// The connection broke mid-request: the outcome is unknown.
    Unknown(String),
}

/// One POST of `body` to `source`, as the `feeder` user.
pub fn post(url: &str, source: &str, content_type: &str, body: impl Into<reqwest::blocking::Body>) -> Posted {
    post_keyed(url, source, content_type, body, None)
}

/// One POST, with an `Idempotency-Key` when `key` is given.
pub fn post_keyed(
    url: &str,
    source: &str,
    content_type: &str,
    body: impl Into<reqwest::blocking::Body>,
    key: Option<&str>,
) -> Posted {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("feeder:{PASSWORD}"));
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut request = client
        .post(format!("{url}/v1/sources/{source}/records"))
        .header("authorization", format!("Basic {auth}"))
        .header("content-type", content_type);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.body(body).send();
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().unwrap_or_default();
            if status == 202 {
                let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                Posted::Accepted(json["accepted"].as_u64().unwrap() as usize)
            } else {
                Posted::Status(status, text)
            }
        }
        Err(error) if error.is_connect() => Posted::NotSent,
        Err(error) => Posted::Unknown(format!("{error:?}")),
    }
}

/// Posts until the answer is 202 (a 503 is retried: the broker may still be electing the
/// transaction coordinator on a fresh start) and returns the number accepted.
pub fn post_until_accepted(url: &str, source: &str, content_type: &str, body: &[u8]) -> usize {
    loop {
        match post(url, source, content_type, body.to_vec()) {
            Posted::Accepted(n) => return n,
            Posted::Status(503, _) => std::thread::sleep(Duration::from_millis(500)),
            other => panic!("{source}: {other:?}"),
        }
    }
}

/// Posts lab results in chunks until told to stop or `total` are acknowledged; tracks which
/// AdmissionIDs were acknowledged and which have an unknown outcome.
#[derive(Clone)]
pub struct Feeder {
    pub url: Arc<Mutex<String>>,
    pub acked: Arc<Mutex<HashSet<i32>>>,
    pub unknown: Arc<Mutex<HashSet<i32>>>,
    pub unavailable: Arc<AtomicUsize>,
    pub stop: Arc<AtomicBool>,
}

impl Feeder {
    pub fn new(url: &str) -> Self {
        Self {
            url: Arc::new(Mutex::new(url.to_string())),
            acked: Arc::default(),
            unknown: Arc::default(),
            unavailable: Arc::default(),
            stop: Arc::default(),
        }
    }

    pub fn spawn(&self, total: i32, chunk: i32) -> std::thread::JoinHandle<()> {
        self.feed(total, chunk, None)
    }

    /// Like `spawn`, but as a sender that retries does: each chunk carries an `Idempotency-Key`
    /// and is sent again, with the same key, after any answer but 202 (a broken connection, a
    /// 503, a refused connection, a proxy's 502 or 504, a 409 while the key is in use) until
    /// it is acknowledged. Nothing is left unknown.
    pub fn spawn_retrying(&self, total: i32, chunk: i32) -> std::thread::JoinHandle<()> {
        self.feed(total, chunk, Some(now_key()))
    }

    /// Posts chunks of lab results; with `run`, under keys `feeder-RUN-FIRST` and retried after
    /// an unknown outcome, without, an unknown outcome is recorded and the feeder moves on.
    fn feed(&self, total: i32, chunk: i32, run: Option<u128>) -> std::thread::JoinHandle<()> {
        let (url, acked, unknown, unavailable, stop) =
            (self.url.clone(), self.acked.clone(), self.unknown.clone(), self.unavailable.clone(), self.stop.clone());
        std::thread::spawn(move || {
            let mut next = 0;
            while next < total && !stop.load(Ordering::SeqCst) {
                let current = url.lock().unwrap().clone();
                let ids = next..next + chunk.min(total - next);
                let key = run.map(|run| format!("feeder-{run}-{}", ids.start));
                let body = lab_results(ids.start, ids.len() as i32);
                match post_keyed(&current, "lab_results", "application/json", body, key.as_deref()) {
                    Posted::Accepted(n) => {
                        assert_eq!(n, ids.len());
                        acked.lock().unwrap().extend(ids.clone());
                        next = ids.end;
                    }
                    Posted::Unknown(_) if key.is_none() => {
                        unknown.lock().unwrap().extend(ids.clone());
                        next = ids.end;
                    }
                    Posted::Status(503, _) => {
                        unavailable.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    // A proxy in front (the compose stack's balancer) could not reach sluice, or
                    // lost it mid-request: the outcome is unknown, as for a broken connection.
                    Posted::Status(502 | 504, _) if key.is_none() => {
                        unknown.lock().unwrap().extend(ids.clone());
                        next = ids.end;
                    }
                    Posted::Status(502 | 504, _) => std::thread::sleep(Duration::from_millis(100)),
                    // The key's first attempt is still being handled (or was, by an instance
                    // that died holding it, until its claim runs out): retry later.
                    Posted::Status(409, _) if key.is_some() => std::thread::sleep(Duration::from_millis(200)),
                    Posted::Unknown(_) | Posted::NotSent => std::thread::sleep(Duration::from_millis(100)),
                    Posted::Status(status, body) => panic!("unexpected {status}: {body}"),
                }
            }
        })
    }
}

/// A key part unique to this run of the tests.
fn now_key() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// `count` lab results with AdmissionIDs `first..first+count`, as one JSON array.
pub fn lab_results(first: i32, count: i32) -> String {
    let records: Vec<String> = (first..first + count)
        .map(|i| {
            format!(
                r#"{{"PatientID":"P{:04}","AdmissionID":{i},"LabName":"CBC: HEMOGLOBIN","LabValue":{}.5,"LabUnits":"gm/dl","LabDateTime":"2012-06-27 10:00:00.000"}}"#,
                i % 997,
                i % 20
            )
        })
        .collect();
    format!("[{}]", records.join(","))
}
