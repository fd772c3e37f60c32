//! A plugin that fails tells the client which limit it hit, with a stable code and without
//! internals; a hostile source hammered by many clients leaves the other sources served.

mod common;

use std::time::{Duration, Instant};

use common::{basic, harness_with_sandbox};
use serde_json::Value;
use sluice_api::ApiLimits;
use sluice_auth::AuthPolicy;
use sluice_runtime::SandboxConfig;
use sluice_test_plugins as testing;

fn error(json: &Value) -> (&str, &str) {
    (json["error"]["code"].as_str().unwrap_or(""), json["error"]["message"].as_str().unwrap_or(""))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_plugin_names_the_limit_it_hit_and_stores_nothing() {
    let sandbox = SandboxConfig {
        call_timeout: Duration::from_millis(300),
        max_memory: bytesize::ByteSize::mib(64),
        ..SandboxConfig::default()
    };
    let plugins = [testing::ENDLESS_LOOP, testing::MEMORY_BOMB];
    let h = harness_with_sandbox(ApiLimits::default(), AuthPolicy::default(), None, &plugins, sandbox);
    h.auth.grant("lab", "endless-loop").unwrap();
    h.auth.grant("lab", "memory-bomb").unwrap();
    let auth = basic("lab", "lab-password");
    let post = |source: &str, body: &'static str| {
        let (h, auth, url) = (&h, auth.clone(), format!("/v1/sources/{source}/records"));
        async move { h.post(&url, Some(&auth), Some("application/json"), body).await }
    };

    let (status, json, _) = post("endless-loop", "\"a\"\n").await;
    assert_eq!(
        (status, error(&json)),
        (500, ("plugin_timeout", "the source's plugin ran longer than its limit of 300 ms; nothing was accepted"))
    );
    let (status, json, _) = post("memory-bomb", "\"bomb-in-split\"\n").await;
    assert_eq!(
        (status, error(&json)),
        (
            500,
            (
                "plugin_memory_limit",
                "the source's plugin needed more memory than its limit of 64 MiB; nothing was accepted"
            )
        )
    );
    // The same plugin, on a record it does not choke on, is reachable end to end.
    let (status, json, _) = post("memory-bomb", "\"fine\"\n").await;
    assert_eq!((status, json["accepted"].clone()), (202, Value::from(1)), "{json}");
    assert!(h.spooled("endless-loop").is_empty());
    assert_eq!(h.spooled("memory-bomb").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugins_together_stay_under_the_host_memory_cap() {
    let sandbox = SandboxConfig {
        max_memory: bytesize::ByteSize::mib(256),
        max_total_memory: bytesize::ByteSize::mib(96),
        ..SandboxConfig::default()
    };
    let plugins = [testing::MEMORY_BOMB];
    let h = harness_with_sandbox(ApiLimits::default(), AuthPolicy::default(), None, &plugins, sandbox);
    h.auth.grant("lab", "memory-bomb").unwrap();
    let (status, json, response) = h
        .post(
            "/v1/sources/memory-bomb/records",
            Some(&basic("lab", "lab-password")),
            Some("application/json"),
            "\"bomb-in-split\"\n",
        )
        .await;
    assert_eq!(
        (status, error(&json)),
        (503, ("plugin_busy", "the plugins together hold all the memory they may; nothing was accepted, retry later"))
    );
    assert_eq!(response.headers()["retry-after"], "5");
    // The failed instance gave its memory back: another source runs.
    let (status, json, _) = h
        .post(
            "/v1/sources/lab_results/records",
            Some(&basic("lab", "lab-password")),
            Some("application/json"),
            r#"{"PatientID": "p1", "LabName": "x"}"#,
        )
        .await;
    assert_eq!(status, 202, "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_source_hammered_by_many_clients_leaves_the_others_served() {
    let sandbox = SandboxConfig {
        call_timeout: Duration::from_millis(500),
        max_concurrent_calls_per_source: 1,
        ..SandboxConfig::default()
    };
    let h = std::sync::Arc::new(harness_with_sandbox(
        ApiLimits::default(),
        AuthPolicy::default(),
        None,
        &[testing::ENDLESS_LOOP],
        sandbox,
    ));
    h.auth.grant("lab", "endless-loop").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..6)
        .map(|_| {
            let (h, stop) = (h.clone(), stop.clone());
            tokio::spawn(async move {
                let mut codes = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let (status, json, _) = h
                        .post(
                            "/v1/sources/endless-loop/records",
                            Some(&basic("lab", "lab-password")),
                            Some("application/json"),
                            "\"spin\"\n",
                        )
                        .await;
                    codes.push((status, error(&json).0.to_string()));
                }
                codes
            })
        })
        .collect();

    let mut latencies = Vec::new();
    for i in 0..40 {
        let started = Instant::now();
        let body = format!(r#"{{"PatientID": "p{i}", "LabName": "CBC: HEMOGLOBIN", "LabValue": 13.2}}"#);
        let (status, json, _) = h
            .post(
                "/v1/sources/lab_results/records",
                Some(&basic("lab", "lab-password")),
                Some("application/json"),
                body,
            )
            .await;
        assert_eq!(status, 202, "{json}");
        latencies.push(started.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut codes = Vec::new();
    for attacker in attackers {
        codes.extend(attacker.await.unwrap());
    }
    assert!(
        codes.iter().all(|(status, code)| (*status, code.as_str()) == (500, "plugin_timeout")
            || (*status, code.as_str()) == (503, "plugin_busy")),
        "{codes:?}"
    );
    assert!(codes.iter().any(|(status, _)| *status == 503), "some attacking requests waited for a turn: {codes:?}");
    assert_eq!(h.spooled("lab_results").len(), 40);
    assert!(h.spooled("endless-loop").is_empty());
    latencies.sort();
    println!(
        "good client during the attack: median {:?}, p99 {:?} ({} attacking requests)",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
        codes.len()
    );
}
