//! MLLP acknowledgements: against a log that is down no AA, an AR that says nothing was stored
//! and to send the message again; a control id reused for another message is an AE; a frame
//! left unfinished is answered before the idle connection is closed.

mod common;

use std::sync::Arc;

use common::{DownLog, harness_with};
use sluice_api::{ApiLimits, MllpConfig, mllp_frame, serve_mllp};
use sluice_auth::AuthPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An MLLP listener for `hl7v2` as `hospital`, on the harness's state, until stopped.
struct Listener {
    address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listener {
    fn start(h: &common::Harness) -> Self {
        Self::start_with(h, serde_json::json!({}))
    }

    /// A listener with `extra` settings (`{"idle_timeout": "1s"}`).
    fn start_with(h: &common::Harness, extra: serde_json::Value) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut settings = serde_json::json!({ "listen": address.to_string(), "source": "hl7v2", "user": "hospital" });
        settings.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let config: MllpConfig = serde_json::from_value(settings).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_mllp(listener, config, h.state.clone(), async move {
            let _ = stopped.await;
        }));
        Self { address, stop, server }
    }

    /// Stops the listener and waits for it to end cleanly.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_log_down_no_message_is_acknowledged_as_accepted() {
    let h = harness_with(ApiLimits::default(), AuthPolicy::default(), Some(Arc::new(DownLog)));
    h.auth.grant("hospital", "hl7v2").unwrap();
    let listener = Listener::start(&h);

    let mut stream = tokio::net::TcpStream::connect(listener.address).await.unwrap();
    let message = b"MSH|^~\\&|LAB|NORTH|SLUICE|DW|20240101120000||ORU^R01|M-1|P|2.5.1\rPID|1||P1\r";
    stream.write_all(&mllp_frame(message)).await.unwrap();
    let mut ack = Vec::new();
    while !ack.ends_with(&[0x1C, 0x0D]) {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        ack.push(byte[0]);
    }
    let ack = String::from_utf8(ack[1..ack.len() - 2].to_vec()).unwrap();
    let segments: Vec<&str> = ack.split('\r').collect();
    assert_eq!(
        segments[1],
        "MSA|AR|M-1|not stored, send it again: the log is unavailable; nothing was accepted, retry later"
    );
    assert_eq!(
        segments[2],
        "ERR|||207^Application internal error^HL70357|E||||not stored, send it again: the log is unavailable; \
         nothing was accepted, retry later"
    );
    listener.stop().await;
}

/// Reads one acknowledgement's segments.
async fn read_ack(stream: &mut tokio::net::TcpStream) -> Vec<String> {
    let mut ack = Vec::new();
    while !ack.ends_with(&[0x1C, 0x0D]) {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        ack.push(byte[0]);
    }
    String::from_utf8(ack[1..ack.len() - 2].to_vec()).unwrap().split('\r').map(str::to_string).collect()
}

/// A frame the sender leaves unfinished is answered when the connection goes idle, before it is
/// closed: taken when only the CR after its end block is missing, else refused naming its
/// control id (before, no answer came and the sender could not tell what became of it).
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_left_unfinished_is_answered_before_the_idle_close() {
    let h = common::harness();
    h.auth.grant("hospital", "hl7v2").unwrap();
    let listener = Listener::start_with(&h, serde_json::json!({ "idle_timeout": "1s" }));
    let message = |id: &str| format!("MSH|^~\\&|LAB|NORTH|SLUICE|DW|20240101120000||ORU^R01|{id}|P|2.5.1\rPID|1||P1\r");

    let mut stream = tokio::net::TcpStream::connect(listener.address).await.unwrap();
    let mut no_cr = vec![0x0B];
    no_cr.extend_from_slice(message("U-1").as_bytes());
    no_cr.push(0x1C);
    stream.write_all(&no_cr).await.unwrap();
    assert_eq!(read_ack(&mut stream).await[1], "MSA|AA|U-1");
    assert_eq!(stream.read(&mut [0u8; 1]).await.unwrap(), 0, "then closed");
    assert_eq!(h.spooled("hl7v2").len(), 1);

    let mut stream = tokio::net::TcpStream::connect(listener.address).await.unwrap();
    let mut half = vec![0x0B];
    half.extend_from_slice(message("U-2").as_bytes());
    stream.write_all(&half).await.unwrap();
    assert_eq!(
        read_ack(&mut stream).await[1],
        "MSA|AR|U-2|the frame did not end: its end block (0x1C 0x0D) never came, and the connection went idle"
    );
    assert_eq!(stream.read(&mut [0u8; 1]).await.unwrap(), 0, "then closed");
    assert_eq!(h.spooled("hl7v2").len(), 1, "nothing of the unfinished frame was stored");

    // Counted with the records the HTTP API counts (only MLLP feeds hl7v2 in these tests; the
    // recorder is shared by the tests running beside this one, so no exact count).
    let request = axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap();
    let metrics = h.send(request).await.1;
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains("sluice_records_accepted_total{source=\"hl7v2\"} "), "{metrics}");
    listener.stop().await;
}

/// Sends one framed message and reads its acknowledgement's segments.
async fn exchange(stream: &mut tokio::net::TcpStream, message: &str) -> Vec<String> {
    stream.write_all(&mllp_frame(message.as_bytes())).await.unwrap();
    read_ack(stream).await
}

/// A different message under a control id the sender already used is refused for its content
/// (AE, ERR code 205: sending it again will not help), never acknowledged as a duplicate; the
/// same message again is.
#[tokio::test(flavor = "multi_thread")]
async fn a_reused_control_id_is_refused_with_205() {
    let h = common::harness();
    h.auth.grant("hospital", "hl7v2").unwrap();
    let listener = Listener::start(&h);
    let mut stream = tokio::net::TcpStream::connect(listener.address).await.unwrap();
    let message = |patient: &str| {
        format!("MSH|^~\\&|LAB|NORTH|SLUICE|DW|20240101120000||ORU^R01|M-1|P|2.5.1\rPID|1||{patient}\r")
    };
    assert_eq!(exchange(&mut stream, &message("P1")).await[1], "MSA|AA|M-1");
    let refused = exchange(&mut stream, &message("P2")).await;
    assert!(refused[1].starts_with("MSA|AE|M-1|a record with the same id"), "{refused:?}");
    assert!(refused[2].starts_with("ERR|||205^Duplicate key identifier^HL70357|E||||"), "{refused:?}");
    assert_eq!(exchange(&mut stream, &message("P1")).await[1], "MSA|AA|M-1", "the same message again");
    assert_eq!(h.spooled("hl7v2").len(), 1);
    listener.stop().await;
}

/// A frame of several messages is refused whole: one acknowledgement cannot answer for each,
/// and nothing of it is stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_of_several_messages_is_refused_whole() {
    let h = common::harness();
    h.auth.grant("hospital", "hl7v2").unwrap();
    let listener = Listener::start(&h);
    let mut stream = tokio::net::TcpStream::connect(listener.address).await.unwrap();
    let message = |id: &str| format!("MSH|^~\\&|LAB|NORTH|SLUICE|DW|20240101120000||ORU^R01|{id}|P|2.5.1\rPID|1||P1\r");
    for frame in [
        format!("{}{}", message("B-1"), message("B-2")),
        format!("FHS|^~\\&\rBHS|^~\\&\r{}{}BTS|2\rFTS|1\r", message("B-3"), message("B-4")),
    ] {
        let refused = exchange(&mut stream, &frame).await;
        assert!(refused[1].starts_with("MSA|AR|B-"), "{refused:?}");
        assert!(
            refused[1].ends_with(
                "|the frame holds 2 messages; MLLP carries one message per frame, each acknowledged on its own: \
                 nothing was stored, send them one per frame"
            ),
            "{refused:?}"
        );
    }
    assert!(h.spooled("hl7v2").is_empty(), "nothing stored");
    assert_eq!(exchange(&mut stream, &message("B-5")).await[1], "MSA|AA|B-5", "one message per frame is taken");
    listener.stop().await;
}
