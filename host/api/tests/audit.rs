//! Every request answered is audited: when the audit log cannot be written, requests are
//! refused (503) instead of answered without a row, and queued rows are written once it can.

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, basic, harness};

#[tokio::test(flavor = "multi_thread")]
async fn requests_that_cannot_be_audited_are_refused_and_no_row_is_lost() {
    let h = harness();
    let auth = basic("hospital", PASSWORD);
    let post = |n: usize| {
        let (h, auth) = (&h, auth.clone());
        async move {
            h.post(
                "/v1/sources/patients/records",
                Some(&auth),
                Some("application/json"),
                format!(r#"{{"PatientID": "p{n}"}}"#),
            )
            .await
        }
    };
    let mut answered = 0;
    assert_eq!(post(0).await.0, 202);
    answered += 1;

    // Another process holds auth.db's write lock (as a full disk or a stuck backup would).
    let blocker = rusqlite::Connection::open(h.dir.path().join("auth.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let (status, json, response) = post(answered).await;
        if status == 503 {
            break (json, response);
        }
        assert_eq!(status, 202, "{json}");
        answered += 1;
        assert!(Instant::now() < deadline, "requests were still taken though none could be audited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refused.0["error"]["code"], "audit_unavailable", "{}", refused.0);
    assert_eq!(refused.0["error"]["message"], "the audit log cannot be written; nothing was accepted, retry later");
    assert_eq!(refused.1.headers()["retry-after"], "5");
    assert_eq!(h.spooled("patients").len(), answered, "the refused request stored nothing");

    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !h.auth.audit_writable() {
        assert!(Instant::now() < deadline, "the queued audit rows were never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(post(answered).await.0, 202);
    answered += 1;
    let rows = h.auth.recent_audit(10_000).unwrap();
    assert_eq!(rows.len(), answered, "one row per answered request, none dropped");
    assert!(rows.iter().all(|r| r.outcome == sluice_auth::Outcome::Accepted));
}
