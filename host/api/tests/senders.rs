//! What real senders send: values only some readers refuse, plugins that lose records, zoned
//! timestamps, ambiguous headers, compressed bodies. Every record sent is accepted or named in
//! `rejected`, and a refused request writes nothing.

mod common;

use std::io::Write;

use common::{PASSWORD, basic, harness, harness_with_plugins};
use serde_json::{Value, json};
use sluice_api::ApiLimits;
use sluice_auth::AuthPolicy;

const LAB_URL: &str = "/v1/sources/lab_results/records";

fn lab(i: usize, value: &str) -> String {
    format!(
        r#"{{"PatientID": "p{i}", "AdmissionID": 1, "LabName": "CBC: HEMOGLOBIN", "LabValue": {value}, "LabUnits": "gm/dl", "LabDateTime": "2012-06-26 08:05:00"}}"#
    )
}

fn rejected_indices(json: &Value) -> Vec<u64> {
    json["rejected"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect()
}

/// A value serde_json refuses inside an otherwise well-formed array rejects that record alone;
/// the records after it are stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_value_the_reader_refuses_rejects_only_its_record() {
    for (bad, reason) in [
        ("1e400", "malformed JSON: number out of range"),
        (r#""\ud83d""#, "malformed JSON: unexpected end of hex escape"),
        (r#""\udc00""#, "malformed JSON: lone leading surrogate in hex escape"),
    ] {
        let h = harness();
        let records: Vec<String> = (0..100).map(|i| lab(i, if i == 10 { bad } else { "12.5" })).collect();
        let body = format!("[{}]", records.join(","));
        let (status, json, _) =
            h.post(LAB_URL, Some(&basic("lab", "lab-password")), Some("application/json"), body).await;
        assert_eq!(status, 202, "{bad}: {json}");
        assert_eq!(json["accepted"], 99, "{bad}: {json}");
        assert_eq!(rejected_indices(&json), [10], "{bad}: {json}");
        let message = json["rejected"][0]["reason"].as_str().unwrap();
        assert!(message.starts_with(reason), "{bad}: {message}");
        assert_eq!(h.spooled("lab_results").len(), 99, "{bad}");
    }
}

/// A plugin that says nothing of some records (a bug in any language) cannot make them vanish:
/// the API names each of them in `rejected` and stores only what the plugin accepted.
#[tokio::test(flavor = "multi_thread")]
async fn records_a_plugin_gives_no_outcome_for_are_rejected_by_name() {
    let plugin = sluice_test_plugins::DROPS_RECORDS;
    let h = harness_with_plugins(ApiLimits::default(), AuthPolicy::default(), None, &[plugin]);
    h.auth.grant("lab", "drops-records").unwrap();
    let body = "\"a\"\n\"b\"\n\"c\"\n\"d\"\n\"e\"\n\"f\"\n";
    let url = "/v1/sources/drops-records/records";
    let (status, json, _) = h.post(url, Some(&basic("lab", "lab-password")), Some("application/json"), body).await;
    assert_eq!(status, 202, "{json}");
    assert_eq!(json["accepted"], 2);
    let lost = "the plugin `drops-records@0.1.0` gave no outcome for this record, so it was not stored (a defect of \
                the plugin; send it again once the plugin is fixed)";
    assert_eq!(
        json["rejected"],
        json!([
            {"index": 2, "reason": lost, "field": null},
            {"index": 3, "reason": "the fourth is refused", "field": null},
            {"index": 4, "reason": lost, "field": null},
            {"index": 5, "reason": lost, "field": null},
        ])
    );
    assert_eq!(h.spooled("drops-records").len(), 2);

    // Nothing accepted and the rest lost: 422, every record named.
    let (status, json, _) =
        h.post(url, Some(&basic("lab", "lab-password")), Some("application/json"), "[1, 2, 3, 4, 5]").await;
    assert_eq!(status, 202, "one line holds the whole array: the plugin accepts it as record 0 {json}");
    assert_eq!(rejected_indices(&json), [1, 2, 3, 4]);
}

/// Timestamps with a zone, as JavaScript, Java and FHIR write them, are accepted and stored as
/// UTC wall clock.
#[tokio::test(flavor = "multi_thread")]
async fn zoned_timestamps_are_accepted() {
    let h = harness();
    let zoned =
        ["2021-06-01T08:05:00Z", "2021-06-01T08:05:00.123Z", "2021-06-01T10:05:00+02:00", "2021-06-01T10:05:00+0200"];
    let records: Vec<String> =
        zoned.iter().enumerate().map(|(i, t)| lab(i, "1").replace("2012-06-26 08:05:00", t)).collect();
    let body = format!("[{}]", records.join(","));
    let (status, json, _) = h.post(LAB_URL, Some(&basic("lab", "lab-password")), Some("application/json"), body).await;
    assert_eq!((status, json["accepted"].clone()), (202, json!(4)), "{json}");
    let bad = lab(0, "1").replace("2012-06-26 08:05:00", "2021-06-01T08:05:00+25:00");
    let (status, json, _) = h.post(LAB_URL, Some(&basic("lab", "lab-password")), Some("application/json"), bad).await;
    assert_eq!(status, 422);
    assert_eq!(
        json["rejected"][0]["reason"], "LabDateTime has an impossible time zone offset (beyond ±23:59)",
        "{json}"
    );
}

/// A header naming a field twice, or none, is refused for every row with one reason that says
/// why; a JSON record whose keys differ only in case is refused by name.
#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_and_foreign_headers_are_refused_with_one_clear_reason() {
    let h = harness();
    let auth = basic("hospital", PASSWORD);
    let url = "/v1/sources/patients/records";
    let body = "PatientID,PatientGender,patientid\nA1,Male,A2\nB1,Female,\n";
    let (status, json, _) = h.post(url, Some(&auth), Some("text/csv"), body).await;
    assert_eq!(status, 422, "{json}");
    let reason = "the header names column `PatientID` 2 times (`PatientID`, `patientid`; column names are matched \
                  ignoring case, spaces, `_`, `-` and `.`): keep one";
    assert_eq!(json["rejected"].as_array().unwrap().len(), 2);
    assert!(json["rejected"].as_array().unwrap().iter().all(|r| r["reason"] == reason), "{json}");

    let body = "PatientID;PatientGender\nA1;Male\n";
    let (status, json, _) = h.post(url, Some(&auth), Some("text/csv"), body).await;
    assert_eq!(status, 422);
    let reason = json["rejected"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no column of the header names a field this source reads (expected PatientID, "),
        "{reason}"
    );
    assert!(reason.ends_with("start the body with the line `sep=;` or use commas"), "{reason}");

    let body = "sep=;\nPatientID;PatientGender\nA1;Male\n";
    let (status, json, _) = h.post(url, Some(&auth), Some("text/csv"), body).await;
    assert_eq!((status, json["accepted"].clone()), (202, json!(1)), "{json}");

    let body = r#"{"PatientID": "A1", "patientID": "A2"}"#;
    let (status, json, _) = h.post(url, Some(&auth), Some("application/json"), body).await;
    assert_eq!(status, 422);
    assert_eq!(
        json["rejected"][0]["reason"],
        "keys `PatientID`, `patientID` all name field `PatientID` (keys are matched ignoring case, spaces, `_`, `-` and `.`): send it once"
    );
    assert_eq!(h.spooled("patients").len(), 1);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Compressed bodies are decoded, the limit applies to the decoded size, and codings sluice
/// does not decode are a 415 that lists those it does.
#[tokio::test(flavor = "multi_thread")]
async fn content_encodings_are_decoded_or_refused() {
    let limits = ApiLimits { max_body_bytes: 64 * 1024, ..ApiLimits::default() };
    let h = common::harness_with(limits, AuthPolicy::default(), None);
    let auth = basic("lab", "lab-password");
    let body = format!("[{}]", (0..20).map(|i| lab(i, "1")).collect::<Vec<_>>().join(","));
    let send = |coding: &'static str, body: Vec<u8>| {
        let request = axum::http::Request::post(LAB_URL)
            .header("authorization", auth.clone())
            .header("content-type", "application/json")
            .header("content-encoding", coding)
            .body(axum::body::Body::from(body))
            .unwrap();
        h.send(request)
    };
    let (status, json, _) = send("gzip", gzip(body.as_bytes())).await;
    assert_eq!((status, json["accepted"].clone()), (202, json!(20)), "{json}");

    let (status, json, _) = send("br", body.clone().into_bytes()).await;
    assert_eq!(status, 400, "a plain body labelled br is not taken as plain: {json}");
    assert!(json["error"]["message"].as_str().unwrap().starts_with("the body is not valid br data"), "{json}");

    let (status, json, response) = send("compress", gzip(body.as_bytes())).await;
    assert_eq!(status, 415);
    assert_eq!(json["error"]["code"], "unsupported_content_encoding");
    assert_eq!(response.headers()["accept-encoding"], "gzip, deflate, br, zstd");

    let bomb = gzip(&vec![b' '; 16 << 20]);
    let (status, json, _) = send("gzip", bomb).await;
    assert_eq!((status, json["error"]["code"].as_str()), (413, Some("body_too_large")), "{json}");
    assert_eq!(h.spooled("lab_results").len(), 20, "only the first request stored anything");
}

fn with_key(
    path: &str,
    auth: &str,
    key: &str,
    content_type: &str,
    body: &str,
) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post(path)
        .header("authorization", auth)
        .header("content-type", content_type)
        .header("idempotency-key", key)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}

/// A retry under the same key gets the original answer and stores nothing; the same key with
/// other content is a 422; keys belong to their user; bad keys are a 400.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_under_the_same_idempotency_key_stores_nothing_new() {
    let h = harness();
    let lab_auth = basic("lab", "lab-password");
    let body = format!("[{},{}]", lab(1, "1"), lab(2, "1e400"));
    let (status, first, response) = h.send(with_key(LAB_URL, &lab_auth, "key-1", "application/json", &body)).await;
    assert_eq!((status, first["accepted"].clone()), (202, json!(1)), "{first}");
    assert!(!response.headers().contains_key("idempotent-replayed"));
    let (status, again, response) = h.send(with_key(LAB_URL, &lab_auth, "key-1", "application/json", &body)).await;
    assert_eq!(status, 202);
    assert_eq!(again, first, "the original answer, request id and rejections included");
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(h.spooled("lab_results").len(), 1, "stored once");

    let other = format!("[{}]", lab(3, "1"));
    let (status, json, _) = h.send(with_key(LAB_URL, &lab_auth, "key-1", "application/json", &other)).await;
    assert_eq!((status, json["error"]["code"].as_str()), (422, Some("idempotency_key_reused")), "{json}");
    let (status, _, _) = h.send(with_key(LAB_URL, &lab_auth, "\"key-1\"", "application/json", &body)).await;
    assert_eq!(status, 202, "a quoted key is the same key");
    assert_eq!(h.spooled("lab_results").len(), 1);

    // Another user's key of the same name is another request.
    h.auth.grant("hospital", "lab_results").unwrap();
    let (status, json, _) =
        h.send(with_key(LAB_URL, &basic("hospital", PASSWORD), "key-1", "application/json", &body)).await;
    assert_eq!((status, json["accepted"].clone()), (202, json!(1)));
    assert_ne!(json["request_id"], first["request_id"]);
    assert_eq!(h.spooled("lab_results").len(), 2);

    // Nothing stored, nothing remembered: the same request is handled again.
    let none = format!("[{}]", lab(4, "\"x\""));
    for _ in 0..2 {
        let (status, _, response) = h.send(with_key(LAB_URL, &lab_auth, "key-2", "application/json", &none)).await;
        assert_eq!(status, 422);
        assert!(!response.headers().contains_key("idempotent-replayed"));
    }
    let (status, json, _) = h.send(with_key(LAB_URL, &lab_auth, "has space", "application/json", &body)).await;
    assert_eq!((status, json["error"]["code"].as_str()), (400, Some("invalid_idempotency_key")));
    assert_eq!(h.spooled("lab_results").len(), 2);
    let audit = h.auth.recent_audit(20).unwrap();
    assert_eq!(audit.iter().filter(|a| a.outcome == sluice_auth::Outcome::Replayed).count(), 2);
}

fn hl7(control_ids: &[&str]) -> String {
    control_ids
        .iter()
        .map(|id| format!("MSH|^~\\&|LAB|H|S|R|20240101120000||ADT^A01|{id}|P|2.5\rPID|1||P-{id}\r"))
        .collect()
}

/// A message sent again (same source, same MSH-10) is acknowledged and stored once, whoever
/// resends it, whether alone or beside new messages, twice in one body, and after the log was
/// reopened (a restart).
#[tokio::test(flavor = "multi_thread")]
async fn a_resent_hl7_message_is_acknowledged_and_stored_once() {
    const URL: &str = "/v1/sources/hl7v2/records";
    let h = harness();
    h.auth.grant("hospital", "hl7v2").unwrap();
    h.auth.grant("lab", "hl7v2").unwrap();
    let hospital = basic("hospital", PASSWORD);
    let send = |auth: String, body: String| {
        let h = &h;
        async move { h.post(URL, Some(&auth), Some("application/hl7-v2"), body).await }
    };
    let (status, json, _) = send(hospital.clone(), hl7(&["M1", "M2"])).await;
    assert_eq!((status, json["accepted"].clone(), json.get("duplicates")), (202, json!(2), None), "{json}");
    let (status, json, _) = send(hospital.clone(), hl7(&["M1", "M2"])).await;
    assert_eq!((status, json["accepted"].clone(), json["duplicates"].clone()), (202, json!(2), json!(2)), "{json}");
    assert_eq!(h.spooled("hl7v2").len(), 2, "the resend stored nothing");

    let (status, json, _) = send(basic("lab", "lab-password"), hl7(&["M2", "M3", "M3"])).await;
    assert_eq!((status, json["accepted"].clone(), json["duplicates"].clone()), (202, json!(3), json!(2)), "{json}");
    assert_eq!(h.spooled("hl7v2").len(), 3, "only M3, once");

    // The memory is in the log: a new API over the reopened spool still knows the ids.
    use std::sync::Arc;
    let reopened =
        Arc::new(sluice_log::SqliteSpool::open(sluice_log::SpoolConfig::new(h.dir.path().join("spool.db"))).unwrap());
    let engine = sluice_runtime::PluginEngine::new(Default::default(), None).unwrap();
    let registry = sluice_runtime::PluginRegistry::open(&engine, None, &common::bundled()).unwrap();
    let sources = sluice_api::SourceTable::new(registry, std::collections::HashMap::new()).unwrap();
    let state = sluice_api::ApiState::new(sources, h.auth.clone(), reopened.clone(), ApiLimits::default());
    let restarted = common::Harness { dir: tempfile::tempdir().unwrap(), auth: h.auth.clone(), spool: reopened, state };
    let (status, json, _) = restarted.post(URL, Some(&hospital), Some("application/hl7-v2"), hl7(&["M1", "M4"])).await;
    assert_eq!((status, json["accepted"].clone(), json["duplicates"].clone()), (202, json!(2), json!(1)), "{json}");
    let ids: Vec<String> = restarted
        .spooled("hl7v2")
        .iter()
        .map(|r| String::from_utf8_lossy(&r.record.payload).split('|').nth(9).unwrap_or_default().to_string())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ["M1", "M2", "M3", "M4"]);
}

/// A CSV quote that is never closed would make the rest of the body one field: the rows after
/// it would vanish with a 202. The request is refused, naming the line, and stores nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_csv_quote_never_closed_refuses_the_request_instead_of_swallowing_rows() {
    let h = harness();
    let auth = basic("lab", "lab-password");
    let header = "PatientID,AdmissionID,LabName,LabValue,LabUnits,LabDateTime\n";
    let row = |i: usize, units: &str| format!("p{i},1,CBC: HEMOGLOBIN,12.5,{units},2012-06-26 08:05:00\n");
    let body = format!("{header}{}{}{}", row(1, "gm/dl"), row(2, "\"gm/dl"), row(3, "gm/dl"));
    let (status, json, _) = h.post(LAB_URL, Some(&auth), Some("text/csv"), body).await;
    assert_eq!(status, 400, "{json}");
    assert_eq!(
        json["error"]["message"],
        "malformed CSV: the quoted field that starts on line 3 is never closed; nothing was stored"
    );
    assert!(h.spooled("lab_results").is_empty());

    let body = format!("{header}{}{}{}", row(1, "gm/dl"), row(2, "\"gm/dl\""), row(3, "gm/dl"));
    let (status, json, _) = h.post(LAB_URL, Some(&auth), Some("text/csv"), body).await;
    assert_eq!((status, json["accepted"].clone()), (202, json!(3)), "the quote closed: {json}");
    assert_eq!(h.spooled("lab_results").len(), 3);
}

/// A request whose messages were all stored before appends nothing, yet its answer is
/// remembered under its Idempotency-Key: a retry replays it, and the key cannot then stand for
/// other content.
#[tokio::test(flavor = "multi_thread")]
async fn an_answer_with_only_duplicates_is_remembered_under_its_idempotency_key() {
    const URL: &str = "/v1/sources/hl7v2/records";
    let h = harness();
    h.auth.grant("hospital", "hl7v2").unwrap();
    let auth = basic("hospital", PASSWORD);
    let (status, json, _) = h.post(URL, Some(&auth), Some("application/hl7-v2"), hl7(&["M1", "M2"])).await;
    assert_eq!((status, json["accepted"].clone()), (202, json!(2)), "{json}");

    let resent = hl7(&["M1", "M2"]);
    let (status, first, response) = h.send(with_key(URL, &auth, "resend-1", "application/hl7-v2", &resent)).await;
    assert_eq!((status, first["duplicates"].clone()), (202, json!(2)), "{first}");
    assert!(!response.headers().contains_key("idempotent-replayed"));
    let (status, again, response) = h.send(with_key(URL, &auth, "resend-1", "application/hl7-v2", &resent)).await;
    assert_eq!(status, 202);
    assert_eq!(again, first, "the original answer, its request id included");
    assert_eq!(response.headers()["idempotent-replayed"], "true");

    let other = hl7(&["M3"]);
    let (status, json, _) = h.send(with_key(URL, &auth, "resend-1", "application/hl7-v2", &other)).await;
    assert_eq!((status, json["error"]["code"].as_str()), (422, Some("idempotency_key_reused")), "{json}");
    assert_eq!(h.spooled("hl7v2").len(), 2, "nothing stored by the resends");
}

/// A body that holds no record (an empty array, a table with only its header row, a byte order
/// mark alone) is a 400 that says so, not a 422 with nothing listed; nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_without_records_are_refused_with_the_reason() {
    let h = harness();
    let auth = basic("lab", "lab-password");
    let no_records = "the body holds no records (an empty JSON array, or a CSV or TSV with only its header row); \
                      nothing was stored";
    let cases = [
        ("application/json", "[]".to_string(), no_records),
        ("application/json", " [ ]\n".to_string(), no_records),
        ("text/csv", "PatientID,AdmissionID,LabName,LabValue,LabUnits,LabDateTime\r\n".to_string(), no_records),
        ("text/tab-separated-values", "PatientID\tAdmissionID\n".to_string(), no_records),
        ("application/x-ndjson", "\n\n".to_string(), "request body is empty"),
        ("text/csv", "\u{feff}".to_string(), "request body is empty"),
        ("application/json", "\u{feff} \r\n".to_string(), "request body is empty"),
    ];
    for (content_type, body, message) in cases {
        let (status, json, _) = h.post(LAB_URL, Some(&auth), Some(content_type), body.clone()).await;
        assert_eq!((status, json["error"]["message"].as_str()), (400, Some(message)), "{content_type} {body:?}");
    }
    assert!(h.spooled("lab_results").is_empty());
    // One record more is accepted: the refusals were for having none.
    let (status, json, _) = h.post(LAB_URL, Some(&auth), Some("application/json"), format!("[{}]", lab(1, "1"))).await;
    assert_eq!((status, json["accepted"].clone()), (202, json!(1)), "{json}");
}

/// A body in another character set than UTF-8, named by its content type's `charset`, is
/// stored as the text it holds (in UTF-8); one that does not name it is refused with a hint; a
/// charset sluice does not know is a 415. Refusals store nothing.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_in_another_character_set_are_decoded_or_refused_by_name() {
    let h = harness();
    let auth = basic("lab", "lab-password");
    let header = b"PatientID,AdmissionID,LabName,LabValue,LabUnits,LabDateTime\r\n".to_vec();
    // "µg/L" and "Müller" in Latin-1 / windows-1252: 0xB5 and 0xFC, neither valid UTF-8 alone.
    let body = [header.clone(), b"p1,1,Vitamin B12 M\xfcller,310,\xb5g/L,2012-06-26 08:05:00\r\n".to_vec()].concat();

    let (status, json, _) = h.post(LAB_URL, Some(&auth), Some("text/csv"), body.clone()).await;
    assert_eq!(status, 400, "{json}");
    assert_eq!(
        json["error"]["message"],
        "request body is not valid UTF-8 (at byte 79); a body in another character set names it in its Content-Type \
         (`; charset=windows-1252`)"
    );
    let (status, json, _) = h.post(LAB_URL, Some(&auth), Some("text/csv; charset=x-klingon"), body.clone()).await;
    assert_eq!((status, json["error"]["code"].as_str()), (415, Some("unsupported_charset")), "{json}");
    assert!(h.spooled("lab_results").is_empty());

    for (n, content_type) in ["text/csv; charset=ISO-8859-1", "text/csv;charset=\"windows-1252\""].iter().enumerate() {
        let (status, json, _) = h.post(LAB_URL, Some(&auth), Some(content_type), body.clone()).await;
        assert_eq!((status, json["accepted"].clone()), (202, json!(1)), "{content_type}: {json}");
        let stored = h.spooled("lab_results");
        assert_eq!(stored.len(), n + 1);
        let text = std::str::from_utf8(&stored[n].record.payload).expect("stored as UTF-8");
        assert!(text.contains("Vitamin B12 Müller") && text.contains("µg/L"), "{text}");
    }
}

/// An HL7 message is the same message only when its sender (MSH-3, MSH-4), its control id
/// (MSH-10) and its content are: another facility's message with the same control id is
/// stored, and a different message under an id already used is rejected by name, never
/// dropped as a duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn a_reused_control_id_is_never_taken_for_a_duplicate() {
    const URL: &str = "/v1/sources/hl7v2/records";
    let h = harness();
    h.auth.grant("hospital", "hl7v2").unwrap();
    let auth = basic("hospital", PASSWORD);
    let message = |facility: &str, id: &str, patient: &str| {
        format!("MSH|^~\\&|LAB|{facility}|S|R|20240101120000||ADT^A01|{id}|P|2.5\rPID|1||{patient}\r")
    };
    let post = |body: String| {
        let (h, auth) = (&h, &auth);
        async move { h.post(URL, Some(auth), Some("application/hl7-v2"), body).await }
    };
    let (status, json, _) = post(message("NORTH", "MSG00001", "P1")).await;
    assert_eq!((status, json["accepted"].clone()), (202, json!(1)), "{json}");
    let (status, json, _) = post(message("SOUTH", "MSG00001", "P2")).await;
    assert_eq!((status, json["accepted"].clone(), json.get("duplicates")), (202, json!(1), None), "{json}");
    assert_eq!(h.spooled("hl7v2").len(), 2, "another facility's message is another message");

    let (status, json, _) = post(message("NORTH", "MSG00001", "P3")).await;
    assert_eq!(status, 422, "{json}");
    assert_eq!(
        json["rejected"],
        json!([{"index": 0, "field": null, "reason": "a record with the same id (HL7 v2: the same MSH-3, MSH-4 and \
                MSH-10) was stored before with other content; this one was not stored: give each new message its \
                own id"}])
    );
    let (status, json, _) = post(message("NORTH", "MSG00001", "P1")).await;
    assert_eq!((status, json["duplicates"].clone()), (202, json!(1)), "the same message again: {json}");

    // In one body: the second message under the first one's id is rejected, the repeat of the
    // first is a duplicate.
    let body = [message("EAST", "E1", "P4"), message("EAST", "E1", "P5"), message("EAST", "E1", "P4")].concat();
    let (status, json, _) = post(body).await;
    assert_eq!((status, json["accepted"].clone(), json["duplicates"].clone()), (202, json!(2), json!(1)), "{json}");
    assert_eq!(rejected_indices(&json), [1]);
    assert_eq!(h.spooled("hl7v2").len(), 3);
}

/// Senders name one media type in several ways (`application/csv` from pandas and HTTP
/// libraries, `application/jsonl` from log shippers, `application/fhir+json` from FHIR
/// clients): each is read as the plugin's declared name of that type; a
/// type the plugin does not read is still a 415 that names what it reads, and stores nothing.
#[tokio::test(flavor = "multi_thread")]
async fn other_names_of_a_media_type_are_read_as_the_declared_one() {
    let h = harness();
    let auth = basic("lab", "lab-password");
    let csv =
        "PatientID,AdmissionID,LabName,LabValue,LabUnits,LabDateTime\r\np1,1,CBC,12.5,gm/dl,2012-06-26 08:05:00\r\n";
    let tsv = csv.replace(',', "\t");
    let ndjson = format!("{}\n{}\n", lab(1, "1.5"), lab(2, "2.5"));
    let cases = [
        ("application/csv", csv.to_string(), "p1"),
        ("Text/X-CSV; charset=utf-8", csv.to_string(), "p1"),
        ("text/tsv", tsv, "p1"),
        ("application/jsonl", ndjson.clone(), "p1 p2"),
        ("application/x-jsonlines", ndjson, "p1 p2"),
        ("application/fhir+json", lab(3, "3.5"), "p3"),
        ("text/json", lab(4, "4.5"), "p4"),
    ];
    let mut expected = Vec::new();
    for (content_type, body, patients) in cases {
        let (status, json, _) = h.post(LAB_URL, Some(&auth), Some(content_type), body).await;
        expected.extend(patients.split(' ').map(|p| format!("\"{p}\"")));
        assert_eq!((status, json["accepted"].as_u64()), (202, Some(patients.split(' ').count() as u64)), "{json}");
        let mut stored: Vec<String> = h
            .spooled("lab_results")
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.record.payload).unwrap()["PatientID"].to_string())
            .collect();
        stored.sort();
        expected.sort();
        assert_eq!(stored, expected, "{content_type}");
    }
    for content_type in ["application/vnd.ms-excel", "application/+json", "text/fhir+json"] {
        let (status, json, _) = h.post(LAB_URL, Some(&auth), Some(content_type), csv).await;
        assert_eq!(status, 415, "{content_type}: {json}");
        assert_eq!(
            json["error"]["message"],
            format!(
                "unsupported content type `{content_type}`; source `lab_results` accepts: application/json, \
                 application/x-ndjson, application/ndjson, text/csv, text/tab-separated-values, text/plain"
            )
        );
    }
    assert_eq!(h.spooled("lab_results").len(), expected.len());
}
