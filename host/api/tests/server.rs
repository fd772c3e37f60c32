//! The API on a real listening socket, driven over HTTP.

mod common;

use common::{PASSWORD, basic, harness};

#[tokio::test(flavor = "multi_thread")]
async fn records_posted_over_http_are_accepted() {
    let h = harness();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sluice_api::serve(listener, None, h.state.clone(), Default::default(), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{address}/v1/sources/admissions/records"))
        .header("authorization", basic("hospital", PASSWORD))
        .header("content-type", "text/csv")
        .body("PatientID,AdmissionID,AdmissionStartDate\r\np1,1,6/26/2012\r\np2,2,2012-07-01 10:00:00\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["accepted"], 2);
    assert_eq!(h.spooled("admissions").len(), 2);
    let unauthorized =
        client.post(format!("http://{address}/v1/sources/admissions/records")).body("x").send().await.unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sluice_api::{ApiLimits, ServerLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection from the loopback address `source` (127.0.0.x: another client address).
async fn connect_from(source: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

/// Everything the server sends until it closes the connection (a test failure after 30 s).
async fn until_closed(mut stream: TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server kept the connection open; it sent {:?}", String::from_utf8_lossy(&out));
    String::from_utf8_lossy(&out).into_owned()
}

/// A server under `limits` with a one-second body timeout; stops when the sender is dropped.
fn start(
    limits: ServerLimits,
) -> (SocketAddr, common::Harness, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let h = common::harness_with(
        ApiLimits { body_timeout: Duration::from_secs(1), ..ApiLimits::default() },
        Default::default(),
        None,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sluice_api::serve(listener, None, h.state.clone(), limits, async {
        let _ = stopped.await;
    }));
    (address, h, stop, server)
}

async fn post_patient(client: &reqwest::Client, address: SocketAddr) -> u16 {
    client
        .post(format!("http://{address}/v1/sources/patients/records"))
        .header("authorization", basic("hospital", PASSWORD))
        .header("content-type", "application/json")
        .body(r#"{"PatientID": "good-client"}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_slow_and_excess_connections_are_closed_while_a_good_client_is_served() {
    let limits = ServerLimits {
        header_timeout: Duration::from_secs(1),
        max_connections: 40,
        max_connections_per_address: 10,
        drain: Duration::from_secs(10),
    };
    let (address, h, _stop, _server) = start(limits);

    // 30 idle connections from one address: 10 are held (until the header timeout), 20 refused.
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(connect_from([127, 0, 0, 2], address).await);
    }
    // A slowloris: headers trickle in, never complete.
    let mut trickle = connect_from([127, 0, 0, 3], address).await;
    trickle.write_all(b"POST /v1/sources/patients/records HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let trickler = tokio::spawn(async move {
        let started = Instant::now();
        while trickle.write_all(b"x-slow: 1\r\n").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        started.elapsed()
    });
    // A body that never arrives in full.
    let mut slow_body = connect_from([127, 0, 0, 4], address).await;
    let headers = format!(
        "POST /v1/sources/patients/records HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"Pati",
        basic("hospital", PASSWORD)
    );
    slow_body.write_all(headers.as_bytes()).await.unwrap();

    // Meanwhile a good client from another address is served.
    let client = reqwest::Client::new();
    for _ in 0..5 {
        assert_eq!(post_patient(&client, address).await, 202);
    }

    let answers: Vec<String> = futures_join(idle.into_iter().map(until_closed)).await;
    let refused =
        answers.iter().filter(|a| a.starts_with("HTTP/1.1 503") && a.contains("too_many_connections")).count();
    let timed_out = answers.iter().filter(|a| a.is_empty()).count();
    assert_eq!((refused, timed_out), (20, 10), "{answers:?}");

    let answer = until_closed(slow_body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"body_timeout""#), "{answer}");
    let trickled =
        tokio::time::timeout(Duration::from_secs(30), trickler).await.expect("the slowloris was cut").unwrap();
    assert!(trickled < Duration::from_secs(10), "the slowloris held on for {trickled:?}");

    // An idle keep-alive connection is closed too, after a request was served on it.
    let mut kept = connect_from([127, 0, 0, 5], address).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let answer = until_closed(kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(h.spooled("patients").len(), 5, "only the good client's records were stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_waits_for_a_half_sent_request_no_longer_than_the_drain() {
    let limits = ServerLimits {
        header_timeout: Duration::from_secs(600),
        drain: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let (address, _h, stop, server) = start(limits);
    let mut half = connect_from([127, 0, 0, 1], address).await;
    half.write_all(b"POST /v1/sources/patients/records HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let client = reqwest::Client::new();
    let _ = client.get(format!("http://{address}/healthz")).send().await.unwrap();
    stop.send(()).unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(30), server).await;
    assert!(stopped.is_ok(), "the server still waits for the half-sent request");
    stopped.unwrap().unwrap().unwrap();
    assert_eq!(until_closed(half).await, "", "the half-sent request was cut");
}

async fn futures_join<F: std::future::Future<Output = String> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<String> {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// What the server answers to a raw HTTP/1.1 request: the status line and the body's
/// `error.message`, read until the server closes the connection.
async fn raw_answer(address: SocketAddr, request: String, body: &[u8], close_after: bool) -> (String, String) {
    let mut stream = connect_from([127, 0, 0, 1], address).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    if close_after {
        stream.shutdown().await.unwrap();
    }
    let answer = until_closed(stream).await;
    let status = answer.lines().next().unwrap_or_default().to_string();
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(json)
        .map_or(String::new(), |json| json["error"]["message"].as_str().unwrap_or_default().to_string());
    (status, message)
}

/// A body cut short on the wire is a 400 that says so, not a 413; a body announced over the
/// limit is refused before it is sent (no `100 Continue`); two Content-Type headers are a 400;
/// an HTTP/1.0 body without Content-Length is a 400 that says to send one. None of them stores
/// anything.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_cut_short_announced_too_large_or_doubly_typed_are_refused_for_what_they_are() {
    let (address, h, _stop, _server) = start(ServerLimits::default());
    let auth = basic("hospital", PASSWORD);
    let head = |extra: &str| {
        format!(
            "POST /v1/sources/patients/records HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\nconnection: close\r\n{extra}\r\n"
        )
    };
    let record = br#"{"PatientID": "p1"}"#;

    let (status, message) =
        raw_answer(address, head("content-type: application/json\r\ncontent-length: 100\r\n"), record, true).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        message,
        "the request body could not be read to its end (cut short, or a malformed chunked encoding); nothing was stored"
    );
    let chunked = head("content-type: application/json\r\ntransfer-encoding: chunked\r\n");
    let (status, message) = raw_answer(address, chunked, b"ZZ\r\nnot a chunk\r\n0\r\n\r\n", false).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(message.starts_with("the request body could not be read to its end"), "{message}");

    let limit = sluice_api::ApiLimits::default().max_body_bytes;
    let expect =
        head(&format!("content-type: application/json\r\nexpect: 100-continue\r\ncontent-length: {}\r\n", limit + 1));
    let (status, message) = raw_answer(address, expect, b"", false).await;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large", "no 100 Continue first");
    assert_eq!(message, format!("request body is larger than the limit of {limit} bytes"));

    let twice = head(&format!(
        "content-type: text/csv\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        record.len()
    ));
    let (status, message) = raw_answer(address, twice, record, false).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(message, "the Content-Type header is given more than once; send one (the body's media type)");
    assert!(h.spooled("patients").is_empty(), "nothing stored");

    // HTTP/1.0 without Content-Length: the body cannot be delimited, so none is read.
    let unannounced = format!(
        "POST /v1/sources/patients/records HTTP/1.0\r\nhost: x\r\nauthorization: {auth}\r\ncontent-type: \
         application/json\r\n\r\n"
    );
    let (status, message) = raw_answer(address, unannounced, record, false).await;
    assert_eq!(status, "HTTP/1.0 400 Bad Request");
    assert_eq!(
        message,
        "request body is empty, and the request has no Content-Length: an HTTP/1.0 request's body is read only with \
         one"
    );
    assert!(h.spooled("patients").is_empty(), "nothing stored");

    // The same request with one Content-Type is stored: the refusals above were for what they named.
    let once = head(&format!("content-type: application/json\r\ncontent-length: {}\r\n", record.len()));
    let (status, _) = raw_answer(address, once, record, false).await;
    assert_eq!(status, "HTTP/1.1 202 Accepted");
    assert_eq!(h.spooled("patients").len(), 1);
}

/// A client that closes its sending side once its request is out (`shutdown(SHUT_WR)`, as
/// `curl --http1.0`-style senders and some interface engines do) still gets its answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let (address, h, _stop, _server) = start(ServerLimits::default());
    let auth = basic("hospital", PASSWORD);
    let record = br#"{"PatientID": "half-closed"}"#;
    let head = format!(
        "POST /v1/sources/patients/records HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        record.len()
    );
    let (status, _) = raw_answer(address, head, record, true).await;
    assert_eq!(status, "HTTP/1.1 202 Accepted");
    assert_eq!(h.spooled("patients").len(), 1);
}

/// Headers past the limits get the JSON 431 that says what was too large, not hyper's empty one.
#[tokio::test(flavor = "multi_thread")]
async fn too_many_or_too_large_headers_are_refused_with_a_431_that_says_so() {
    let (address, h, _stop, _server) = start(ServerLimits::default());
    let auth = basic("hospital", PASSWORD);
    let record = br#"{"PatientID": "p1"}"#;
    let request = |extra: String| {
        format!(
            "POST /v1/sources/patients/records HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
            record.len()
        )
    };
    let many: String = (0..150).map(|i| format!("x-field-{i}: {i}\r\n")).collect();
    let (status, message) = raw_answer(address, request(many), record, false).await;
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert!(
        message.starts_with("the request's headers are too large: 155 fields of ")
            && message.ends_with("at most 100 fields of 65536 bytes together are accepted"),
        "{message}"
    );
    let large = format!("cookie: {}\r\n", "c".repeat(70_000));
    let (status, message) = raw_answer(address, request(large), record, false).await;
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert!(message.starts_with("the request's headers are too large: 6 fields of 70"), "{message}");
    assert!(h.spooled("patients").is_empty(), "nothing stored");
    // Within the limits the same request is stored.
    let (status, _) = raw_answer(address, request("x-field: 1\r\n".into()), record, false).await;
    assert_eq!(status, "HTTP/1.1 202 Accepted");
}
