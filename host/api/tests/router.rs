//! The API in-process: every bad input gets its exact status and message, and nothing is written.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{PASSWORD, basic, harness, harness_with};
use serde_json::{Value, json};
use sluice_api::ApiLimits;
use sluice_auth::{AuthPolicy, Outcome};

const PATIENT: &str = r#"{"PatientID": "FB2ABB23-C9D0-4D09-8464-49BF0B982F0F", "PatientGender": "Male", "PatientDateOfBirth": "1947-12-28 02:45:40.547", "PatientRace": "Unknown", "PatientMaritalStatus": "Married", "PatientLanguage": "Icelandic", "PatientPopulationPercentageBelowPoverty": 18.08}"#;
const URL: &str = "/v1/sources/patients/records";

fn error(json: &Value) -> (&str, &str) {
    (json["error"]["code"].as_str().unwrap(), json["error"]["message"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_records_are_durable_with_provenance_before_202() {
    let h = harness();
    let body = format!("[{PATIENT}, {{\"PatientGender\": \"F\"}}, {PATIENT}]");
    let (status, json, response) =
        h.post(URL, Some(&basic("hospital", PASSWORD)), Some("application/json"), body).await;
    assert_eq!(status, 202, "{json}");
    assert_eq!(json["accepted"], 2);
    assert_eq!(json["plugin"], "patients@0.1.0");
    assert_eq!(
        json["rejected"],
        json!([{"index": 1, "reason": "PatientID is missing or Unknown", "field": "PatientID"}])
    );
    let request_id = json["request_id"].as_str().unwrap();
    assert_eq!(response.headers()["x-request-id"], request_id);
    let stored = h.spooled("patients");
    assert_eq!(stored.len(), 2);
    let record = &stored[0];
    assert_eq!(record.record.key.as_deref(), Some("FB2ABB23-C9D0-4D09-8464-49BF0B982F0F"));
    assert_eq!(record.provenance.user, "hospital");
    assert_eq!(record.provenance.plugin, "patients@0.1.0");
    assert_eq!(record.provenance.request_id, request_id);
    assert_eq!(record.provenance.plugin_digest.len(), 64);
    let canonical: Value = serde_json::from_slice(&record.record.payload).unwrap();
    assert_eq!(canonical["PatientRace"], "Unknown", "canonical records keep the sender's values");

    let audit = h.auth.recent_audit(1).unwrap();
    assert_eq!((audit[0].accepted, audit[0].rejected, audit[0].outcome), (2, 1, Outcome::Accepted));
    assert_eq!(audit[0].user.as_deref(), Some("hospital"));
    let audit_text = format!("{audit:?}");
    assert!(!audit_text.contains("FB2ABB23"), "no record contents in the audit log");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_acceptable_is_422_with_reasons_and_nothing_written() {
    let h = harness();
    let body = "PatientID\tPatientDateOfBirth\n\t1970-01-01\nabc\t1970-02-31\n";
    let (status, json, _) =
        h.post(URL, Some(&basic("hospital", PASSWORD)), Some("text/tab-separated-values"), body).await;
    assert_eq!(status, 422);
    assert_eq!(json["accepted"], 0);
    assert_eq!(json["rejected"][1]["reason"], "PatientDateOfBirth is not a possible date");
    assert!(h.spooled("patients").is_empty());
}

/// Two Authorization headers are refused whatever they hold: which one counts would be a guess,
/// and one could pass while the sender meant the other.
#[tokio::test(flavor = "multi_thread")]
async fn two_authorization_headers_are_refused_whichever_is_good() {
    let h = harness();
    let (good, bad) = (basic("hospital", PASSWORD), basic("hospital", "wrong-password"));
    for (first, second) in [(&good, &bad), (&bad, &good), (&good, &good)] {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri(URL)
            .header("authorization", first)
            .header("authorization", second)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(PATIENT))
            .unwrap();
        let (status, json, _) = h.send(request).await;
        assert_eq!(
            (status, error(&json)),
            (
                401,
                (
                    "unauthorized",
                    "malformed Authorization header: the Authorization header is given more than once; send one"
                )
            )
        );
    }
    assert!(h.spooled("patients").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_failures_are_401_with_a_challenge() {
    let h = harness();
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "authentication required: send HTTP Basic credentials or a Bearer token"),
        (Some("Token abc".into()), "malformed Authorization header: expected `Basic …` or `Bearer …`"),
        (Some("Basic %%%".into()), "malformed Authorization header: Basic credentials are not base64"),
        (Some(basic("hospital", "wrong-password")), "invalid user name or password"),
        (Some(basic("intruder", PASSWORD)), "invalid user name or password"),
        (Some("Bearer slc_000000000000_nope".into()), "invalid API token"),
    ];
    for (auth, message) in cases {
        let (status, json, response) = h.post(URL, auth.as_deref(), Some("application/json"), PATIENT).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(error(&json), ("unauthorized", message));
        assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic realm=\"sluice\""));
    }
    assert!(h.spooled("patients").is_empty());
    // A sender without credentials retrying in a loop: its repeats within the failure window
    // are counted on one more row, not a row each.
    for _ in 0..10 {
        assert_eq!(h.post(URL, None, Some("application/json"), PATIENT).await.0, 401);
    }
    let audit = h.auth.recent_audit(20).unwrap();
    let failed: Vec<_> = audit.iter().filter(|a| a.outcome == Outcome::AuthFailed).collect();
    let mut details: Vec<_> = failed.iter().map(|a| (a.detail.as_deref().unwrap_or("-"), a.attempts)).collect();
    details.sort();
    assert_eq!(
        details,
        [
            ("bad_password", 1),
            ("bad_password", 1),
            ("bad_token", 1),
            ("malformed", 1),
            ("malformed", 1),
            ("missing", 1),
            ("missing", 10)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_work_until_revoked_or_expired() {
    let h = harness();
    let token = h.auth.create_token("hospital", "feed", None).unwrap();
    let bearer = format!("Bearer {}", token.token);
    let (status, _, _) = h.post(URL, Some(&bearer), Some("application/json"), PATIENT).await;
    assert_eq!(status, 202);
    h.auth.revoke_token(&token.id).unwrap();
    let (status, json, _) = h.post(URL, Some(&bearer), Some("application/json"), PATIENT).await;
    assert_eq!((status, error(&json)), (401, ("unauthorized", "API token has been revoked")));
    let expired = h.auth.create_token("hospital", "old", Some(chrono_past())).unwrap();
    let (status, json, _) =
        h.post(URL, Some(&format!("Bearer {}", expired.token)), Some("application/json"), PATIENT).await;
    assert_eq!((status, error(&json)), (401, ("unauthorized", "API token has expired")));
    assert_eq!(h.spooled("patients").len(), 1);
}

fn chrono_past() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::TimeDelta::seconds(5)
}

#[tokio::test(flavor = "multi_thread")]
async fn authorization_and_routing_errors() {
    let h = harness();
    let lab = basic("lab", "lab-password");
    let (status, json, _) = h.post(URL, Some(&lab), Some("application/json"), PATIENT).await;
    assert_eq!((status, error(&json)), (403, ("forbidden", "user `lab` may not post to source `patients`")));
    let (status, json, _) =
        h.post("/v1/sources/radiology/records", Some(&lab), Some("application/json"), PATIENT).await;
    assert_eq!((status, error(&json)), (404, ("unknown_source", "unknown source `radiology`")));
    for bad in ["pat%3Bdrop%20table", "pat'x", "..", "PATIENTS", "a%2Fb"] {
        let (status, json, _) =
            h.post(&format!("/v1/sources/{bad}/records"), Some(&lab), Some("application/json"), PATIENT).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(error(&json).0, "invalid_source_name");
    }
    let (status, json, _) = h.post("/v1/nowhere", Some(&lab), None, "x").await;
    assert_eq!((status, error(&json)), (404, ("not_found", "no such endpoint")));
    let (status, json, _) = h.post(&format!("{URL}/"), Some(&lab), Some("application/json"), PATIENT).await;
    assert_eq!(
        (status, error(&json)),
        (404, ("not_found", "no such endpoint: drop the trailing slash (`/v1/sources/patients/records`)"))
    );
    for (path, slash) in [
        ("//v1/sources/patients/records", "the doubled slash"),
        ("/v1//sources/patients/records", "the doubled slash"),
        ("//v1/sources/patients/records/", "the doubled and the trailing slashes"),
        ("/v1/sources/patients/records//", "the trailing slash"),
    ] {
        let (status, json, _) = h.post(path, Some(&lab), Some("application/json"), PATIENT).await;
        let hint = format!("no such endpoint: drop {slash} (`/v1/sources/patients/records`)");
        assert_eq!((status, error(&json)), (404, ("not_found", hint.as_str())), "{path}");
    }
    let (status, json, _) = h.post("//v1/nowhere", Some(&lab), None, "x").await;
    assert_eq!((status, error(&json)), (404, ("not_found", "no such endpoint")));
    for method in ["GET", "PUT", "DELETE"] {
        let request = axum::http::Request::builder().method(method).uri(URL).body(axum::body::Body::empty()).unwrap();
        let (status, json, response) = h.send(request).await;
        assert_eq!((status, error(&json).0), (405, "method_not_allowed"), "{method}: {json}");
        assert_eq!(response.headers()["allow"], "POST", "{method}");
    }
    assert!(h.spooled("patients").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn body_errors_have_their_own_status_and_message() {
    let limits = ApiLimits { max_body_bytes: 4096, max_records: 3, max_json_depth: 8, ..ApiLimits::default() };
    let h = harness_with(limits, AuthPolicy::default(), None);
    let auth = basic("hospital", PASSWORD);
    let json_ct = Some("application/json");

    let (status, json, _) = h.post(URL, Some(&auth), Some("application/xml"), "<a/>").await;
    assert_eq!(status, 415);
    assert!(
        error(&json)
            .1
            .starts_with("unsupported content type `application/xml`; source `patients` accepts: application/json")
    );
    let (status, json, _) = h.post(URL, Some(&auth), None, PATIENT).await;
    assert_eq!((status, error(&json).0), (415, "unsupported_content_type"));

    let (status, json, _) = h.post(URL, Some(&auth), json_ct, "").await;
    assert_eq!((status, error(&json)), (400, ("bad_request", "request body is empty")));
    let (status, json, _) = h.post(URL, Some(&auth), json_ct, "x".repeat(5000)).await;
    assert_eq!(
        (status, error(&json)),
        (413, ("body_too_large", "request body is larger than the limit of 4096 bytes"))
    );
    let (status, json, _) = h.post(URL, Some(&auth), Some("text/csv"), vec![b'P', 0xff, 0xfe, b'\n']).await;
    assert_eq!(
        (status, error(&json)),
        (
            400,
            (
                "bad_request",
                "request body is not valid UTF-8 (at byte 1); a body in another character set names it in its \
                 Content-Type (`; charset=windows-1252`)"
            )
        )
    );
    let (status, json, _) = h.post(URL, Some(&auth), json_ct, r#"{"PatientID": "a""#).await;
    assert_eq!(
        (status, error(&json)),
        (400, ("bad_request", "malformed JSON: EOF while parsing an object at line 1 column 17"))
    );
    let deep = format!("{}{}", "[".repeat(9), "]".repeat(9));
    let (status, json, _) = h.post(URL, Some(&auth), json_ct, deep).await;
    assert_eq!((status, error(&json)), (400, ("bad_request", "JSON is nested deeper than the limit of 8 levels")));
    let four = format!("[{PATIENT},{PATIENT},{PATIENT},{PATIENT}]");
    let (status, json, _) = h.post(URL, Some(&auth), json_ct, four).await;
    assert_eq!(
        (status, error(&json)),
        (413, ("too_many_records", "request holds 4 records, more than the limit of 3 per request"))
    );
    // Records the plugin rejects count too: the limit is on what a request holds.
    let three_and_a_bad_one = format!("[{PATIENT},{PATIENT},{PATIENT},{{}}]");
    let (status, json, _) = h.post(URL, Some(&auth), json_ct, three_and_a_bad_one).await;
    assert_eq!(
        (status, error(&json)),
        (413, ("too_many_records", "request holds 4 records, more than the limit of 3 per request"))
    );
    assert!(h.spooled("patients").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_down_is_503_and_nothing_is_accepted() {
    let h = harness_with(ApiLimits::default(), AuthPolicy::default(), Some(Arc::new(common::DownLog)));
    let (status, json, response) =
        h.post(URL, Some(&basic("hospital", PASSWORD)), Some("application/json"), PATIENT).await;
    assert_eq!(
        (status, error(&json)),
        (503, ("log_unavailable", "the log is unavailable; nothing was accepted, retry later"))
    );
    assert!(response.headers().contains_key("retry-after"));
    let (status, json, _) = h.send(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!((status, json["ready"].clone()), (503, Value::Bool(false)));
    assert!(h.spooled("patients").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_get_429_with_retry_after() {
    let policy =
        AuthPolicy { max_failures_per_user: 2, failure_window: Duration::from_secs(60), ..AuthPolicy::default() };
    let h = harness_with(ApiLimits::default(), policy, None);
    for _ in 0..2 {
        let (status, _, _) =
            h.post(URL, Some(&basic("hospital", "guess-1234")), Some("application/json"), PATIENT).await;
        assert_eq!(status, 401);
    }
    let (status, json, response) =
        h.post(URL, Some(&basic("hospital", PASSWORD)), Some("application/json"), PATIENT).await;
    assert_eq!((status, error(&json).0), (429, "rate_limited"));
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seeds_routes_take_its_double_encoded_bodies() {
    let h = harness();
    let encoded = serde_json::to_string(PATIENT).unwrap();
    let (status, json, _) =
        h.post("/api_patient", Some(&basic("hospital", PASSWORD)), Some("application/json"), encoded).await;
    assert_eq!(status, 202, "{json}");
    assert_eq!(json["source"], "patients");
    let admission = r#"{"PatientID": "p1", "AdmissionID": 1, "AdmissionStartDate": "6/26/2012"}"#;
    let (status, _, _) = h.post("/api_admissions", Some(&basic("hospital", PASSWORD)), None, admission).await;
    assert_eq!(status, 202, "no content type means JSON on the seed's routes");
    let (status, _, _) = h.post("/api_lab_results", Some(&basic("hospital", PASSWORD)), None, admission).await;
    assert_eq!(status, 403, "the seed's hacker is refused");
    assert_eq!(h.spooled("patients").len() + h.spooled("admissions").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_endpoints() {
    let h = harness();
    let get = |path: &str| axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
    assert_eq!(h.send(get("/healthz")).await.0, 200);
    let (status, json, _) = h.send(get("/readyz")).await;
    assert_eq!((status, json["log"].as_str()), (200, Some("sqlite-spool")));
    let (status, _, _) = h.send(get("/v1/sources")).await;
    assert_eq!(status, 401);
    let request = axum::http::Request::get("/v1/sources")
        .header("authorization", basic("lab", "lab-password"))
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, json, _) = h.send(request).await;
    assert_eq!(status, 200);
    let sources = json["sources"].as_array().unwrap();
    let names: Vec<&str> = sources.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["admissions", "hl7v2", "lab_results", "patients"]);
    assert_eq!(sources[2]["granted"], true);
    assert_eq!(sources[2]["tables"][0]["columns"][3]["type"], "float64");

    let (_, openapi, _) = h.send(get("/openapi.json")).await;
    let paths: Vec<&String> = openapi["paths"].as_object().unwrap().keys().collect();
    for route in ["/v1/sources/{source}/records", "/v1/sources", "/healthz", "/readyz", "/metrics"] {
        assert!(paths.iter().any(|p| p.as_str() == route), "{route} in {paths:?}");
    }
    h.post(URL, Some(&basic("hospital", PASSWORD)), Some("application/json"), PATIENT).await;
    let (status, metrics, _) = h.send(get("/metrics")).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert_eq!(status, 200);
    assert!(metrics.contains("sluice_records_accepted_total{source=\"patients\"}"), "{metrics}");
    assert!(metrics.contains("sluice_http_request_duration_seconds_bucket"), "{metrics}");
}

/// The OpenAPI document describes the API as it is: every route (the seed's included) under a
/// named tag, every content type the bundled plugins read, the Idempotency-Key and
/// Content-Encoding headers, and JSON errors. Written to `target/openapi.json`, where
/// `tests/openapi.sh` validates it with a real OpenAPI validator.
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_the_real_api() {
    let h = harness();
    let get = |path: &str| axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
    let (status, openapi, _) = h.send(get("/openapi.json")).await;
    assert_eq!(status, 200);
    let paths = openapi["paths"].as_object().unwrap();
    let mut routes: Vec<&str> = paths.keys().map(String::as_str).collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "/api_admissions",
            "/api_lab_results",
            "/api_patient",
            "/healthz",
            "/metrics",
            "/readyz",
            "/v1/sources",
            "/v1/sources/{source}/records"
        ]
    );
    for (route, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let tags = operation["tags"].as_array().unwrap_or_else(|| panic!("{method} {route} has no tag"));
            assert!(tags.iter().all(|t| !t.as_str().unwrap().contains("::")), "{method} {route}: {tags:?}");
        }
    }
    let ingest = &paths["/v1/sources/{source}/records"]["post"];
    let content_types: Vec<&String> = ingest["requestBody"]["content"].as_object().unwrap().keys().collect();
    for content_type in sluice_plugin_sdk::records::CONTENT_TYPES.iter().chain(&["application/hl7-v2"]) {
        assert!(content_types.iter().any(|c| c == content_type), "{content_type} in {content_types:?}");
    }
    let headers: Vec<&str> = ingest["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "header")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(headers, ["Idempotency-Key", "Content-Encoding"]);
    for status in ["400", "401", "409", "413", "415", "503"] {
        assert_eq!(
            ingest["responses"][status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{status}"
        );
    }
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/openapi.json");
    std::fs::write(target, serde_json::to_vec_pretty(&openapi).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn below_the_free_space_floor_requests_get_507_and_readyz_says_why() {
    let h = harness();
    let get = || axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
    // A floor no disk can meet: the data directory's disk is "full".
    let full = common::Harness {
        state: h.state.clone().with_disk_guard(sluice_api::DiskGuard::new(h.dir.path(), u64::MAX)),
        ..h
    };
    let (status, json, response) =
        full.post(URL, Some(&basic("hospital", PASSWORD)), Some("application/json"), PATIENT).await;
    assert_eq!(
        (status, error(&json)),
        (507, ("insufficient_storage", "the server's disk is nearly full; nothing was accepted, retry later"))
    );
    assert_eq!(response.headers()["retry-after"], "10");
    assert!(full.spooled("patients").is_empty(), "nothing was stored");
    let (status, json, _) = full.send(get()).await;
    assert_eq!(
        (status, json["ready"].clone(), json["disk_room"].clone()),
        (503, Value::Bool(false), Value::Bool(false))
    );

    // Free space above the floor: taken again.
    let roomy = common::Harness {
        state: full.state.clone().with_disk_guard(sluice_api::DiskGuard::new(full.dir.path(), 1)),
        ..full
    };
    let (status, _, _) = roomy.post(URL, Some(&basic("hospital", PASSWORD)), Some("application/json"), PATIENT).await;
    assert_eq!(status, 202);
    assert_eq!(roomy.spooled("patients").len(), 1);
    assert_eq!(roomy.send(get()).await.0, 200);
}
