//! HL7 v2 over MLLP into a running `sluice serve`: acknowledged once durable, stored once however
//! often it is sent (across a restart too), every bad input answered precisely.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::{Server, admin, repo, serving, sluice, wait_rows};

/// `sluice serve` with one MLLP listener for source `hl7v2` as user `ward7`, and its address.
fn serve_with_mllp(data: &Path, extra: &str) -> (Server, SocketAddr) {
    let config = data.join("sluice.toml");
    std::fs::write(
        &config,
        format!("[[mllp]]\nlisten = \"127.0.0.1:0\"\nsource = \"hl7v2\"\nuser = \"ward7\"\n{extra}"),
    )
    .unwrap();
    let mut server = serving(
        sluice(data)
            .env("SLUICE__STREAM__ROLL_INTERVAL", "100ms")
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config),
    );
    let mut line = String::new();
    loop {
        line.clear();
        assert!(server._stdout.read_line(&mut line).unwrap() > 0, "the banner names the MLLP address");
        if let Some(rest) = line.strip_prefix("MLLP on ") {
            let address = rest.split_whitespace().next().unwrap().parse().unwrap();
            return (server, address);
        }
    }
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0x0B];
    out.extend_from_slice(message);
    out.extend_from_slice(&[0x1C, 0x0D]);
    out
}

/// Reads one acknowledgement frame; its segments.
fn read_ack(stream: &mut TcpStream) -> Vec<String> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        stream.read_exact(&mut byte).expect("an acknowledgement");
        bytes.push(byte[0]);
        if bytes.ends_with(&[0x1C, 0x0D]) {
            break;
        }
    }
    assert_eq!(bytes[0], 0x0B);
    let text = String::from_utf8(bytes[1..bytes.len() - 2].to_vec()).unwrap();
    text.split('\r').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/data/hl7v2-samples").join(name)).unwrap()
}

fn message(control_id: &str, patient: &str, extra: &str) -> Vec<u8> {
    format!("MSH|^~\\&|LAB|NORTH|SLUICE|DW|20240101120000||ORU^R01|{control_id}|P|2.5.1\rPID|1||{patient}\r{extra}")
        .into_bytes()
}

/// MSA of an acknowledgement.
fn msa(ack: &[String]) -> &str {
    ack.iter().find(|s| s.starts_with("MSA|")).expect("an MSA segment")
}

#[test]
fn messages_over_mllp_are_acknowledged_once_durable_and_stored_once() {
    let data = tempfile::tempdir().unwrap();
    assert!(admin(data.path(), &["users", "add", "ward7", "--password-stdin"], Some("ward7-password\n")).0);
    assert!(admin(data.path(), &["grants", "add", "ward7", "hl7v2"], None).0);
    let (server, address) = serve_with_mllp(data.path(), "max_message = \"4 KiB\"\n");
    let mut stream = connect(address);

    // One message: AA naming its control id, the MSH built from the inbound one.
    stream.write_all(&frame(&message("M-1", "P1", ""))).unwrap();
    let ack = read_ack(&mut stream);
    assert!(ack[0].starts_with("MSH|^~\\&|SLUICE|DW|LAB|NORTH|"), "{ack:?}");
    assert!(ack[0].contains("|ACK^R01^ACK|") && ack[0].ends_with("|P|2.5.1"), "{ack:?}");
    assert_eq!(msa(&ack), "MSA|AA|M-1");

    // Pipelined: two frames sent before reading; the ACKs come in order. A real sample with a
    // BOM and LF terminators among them.
    let mut two = frame(&sample("microsoft-fhir-converter/ADT01-28.hl7"));
    two.extend(frame(&message("M-2", "P2", "")));
    stream.write_all(&two).unwrap();
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AA|MSG00001");
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AA|M-2");

    // A resend after a lost ACK: AA again, no second row.
    stream.write_all(&frame(&message("M-1", "P1", ""))).unwrap();
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AA|M-1");

    // The plugin refuses the content: AE with ERR naming the field; nothing stored.
    stream.write_all(&frame(&message("M-3", "P1", "OBX|1|NM|8867-4^Heart rate^LN||fast\r"))).unwrap();
    let ack = read_ack(&mut stream);
    assert_eq!(msa(&ack), "MSA|AE|M-3|OBX[1]-5 is not a number (OBX-2 is NM)");
    assert_eq!(ack[2], "ERR||OBX^1^5|102^Data type error^HL70357|E||||OBX[1]-5 is not a number (OBX-2 is NM)");
    // An unknown version: AR (the message fails the checks before the application) naming
    // MSH-12 (203), in the ERR-1 form versions before 2.5 read.
    stream.write_all(&frame(&message("M-4", "P1", "").replace_version("2.2"))).unwrap();
    let ack = read_ack(&mut stream);
    assert!(ack[0].ends_with("|P|2.2"), "the version as sent: {ack:?}");
    assert_eq!(msa(&ack), "MSA|AR|M-4|MSH-12 names an HL7 version this plugin does not read (2.3 to 2.8)");
    assert_eq!(ack[2], "ERR|MSH^1^12^203&Unsupported version id&HL70357");
    // No MSH, a message over the limit: AR, and the connection goes on.
    stream.write_all(&frame(b"PID|1||P1\r")).unwrap();
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AR||the frame does not start with an MSH segment");
    stream.write_all(&frame(&message("M-5", "P1", &"NTE|1||x\r".repeat(600)))).unwrap();
    // (The ACK names the control id its start holds, so the sender can tell which message.)
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AR|M-5|the message is larger than the limit of 4096 bytes");
    // A frame without its end block, followed by a good one.
    let mut cut = b"\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|M-6|P|2.5\rPID|1||P1\r".to_vec();
    cut.extend(frame(&message("M-7", "P1", "")));
    stream.write_all(&cut).unwrap();
    assert_eq!(
        msa(&read_ack(&mut stream)),
        "MSA|AR|M-6|the frame has no end block: a new frame (0x0B) began before 0x1C 0x0D"
    );
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AA|M-7");
    // Bytes outside a frame: AR, then the connection is closed (the framing is lost).
    stream.write_all(b"MSH|not framed\r").unwrap();
    assert!(msa(&read_ack(&mut stream)).starts_with("MSA|AR||byte 0x4D outside an MLLP frame"));
    assert_eq!(stream.read(&mut [0u8; 1]).unwrap(), 0, "closed");

    // M-1, MSG00001, M-2, M-7: once each. (M-7 has M-1's patient, so the same partition: a
    // second M-1 would have landed before it.)
    let stored = wait_rows(data.path(), "message", 4);
    assert_eq!(stored, ["M-1", "M-2", "M-7", "MSG00001"]);
    assert_eq!(wait_rows(data.path(), "patient", 4).len(), 4);
    drop(server);

    // After a restart the ids are still known: the resend is acknowledged and stores nothing.
    let (_server, address) = serve_with_mllp(data.path(), "");
    let mut stream = connect(address);
    stream.write_all(&frame(&message("M-1", "P1", ""))).unwrap();
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AA|M-1");
    stream.write_all(&frame(&message("M-8", "P1", ""))).unwrap();
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AA|M-8");
    assert_eq!(wait_rows(data.path(), "message", 5), ["M-1", "M-2", "M-7", "M-8", "MSG00001"]);

    // The audit log has the connections and each message, never their contents.
    let auth = sluice_auth::AuthStore::open(&data.path().join("auth.db"), Default::default()).unwrap();
    let audit = auth.recent_audit(100).unwrap();
    let outcomes: Vec<&str> = audit.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "connected").count(), 2, "{outcomes:?}");
    assert!(outcomes.iter().filter(|o| **o == "disconnected").count() >= 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == "accepted").count(), 7, "{outcomes:?}");
    assert!(audit.iter().all(|a| a.user.as_deref() == Some("ward7") && a.source.as_deref() == Some("hl7v2")));
}

#[test]
fn a_listener_whose_user_may_not_post_rejects_and_plain_remote_listeners_need_consent() {
    let data = tempfile::tempdir().unwrap();
    assert!(admin(data.path(), &["users", "add", "ward7", "--password-stdin"], Some("ward7-password\n")).0);
    let (_server, address) = serve_with_mllp(data.path(), "");
    let mut stream = connect(address);
    stream.write_all(&frame(&message("M-1", "P1", ""))).unwrap();
    assert_eq!(msa(&read_ack(&mut stream)), "MSA|AR|M-1|user `ward7` may not post to source `hl7v2`");

    let config = data.path().join("remote.toml");
    std::fs::write(&config, "[[mllp]]\nlisten = \"0.0.0.0:0\"\nsource = \"hl7v2\"\nuser = \"ward7\"\n").unwrap();
    let out = sluice(data.path()).args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: invalid configuration: mllp.listen 0.0.0.0:0 is not a loopback address: plain MLLP there carries \
         patient data unencrypted and unauthenticated; set allow_plain_remote = true on this listener to accept that"
    );
}

trait WithVersion {
    fn replace_version(self, version: &str) -> Vec<u8>;
}

impl WithVersion for Vec<u8> {
    fn replace_version(self, version: &str) -> Vec<u8> {
        String::from_utf8(self).unwrap().replacen("|P|2.5.1\r", &format!("|P|{version}\r"), 1).into_bytes()
    }
}

#[test]
fn the_simulator_sends_generated_and_replayed_messages_over_mllp() {
    let data = tempfile::tempdir().unwrap();
    assert!(admin(data.path(), &["users", "add", "ward7", "--password-stdin"], Some("ward7-password\n")).0);
    assert!(admin(data.path(), &["grants", "add", "ward7", "hl7v2"], None).0);
    let (_server, address) = serve_with_mllp(data.path(), "");
    let address = address.to_string();
    let run = |extra: &[&str]| {
        let out = sluice(data.path())
            .args(["simulate", "--mllp", &address, "--connections", "4", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let generated = run(&["--count", "300", "--seed", "3"]);
    assert_eq!((generated["accepted"].as_u64(), generated["errors"].as_u64()), (Some(300), Some(0)), "{generated}");
    assert!(generated["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let sample = repo().join("tests/data/hl7v2-samples/python-hl7/sample_batch2.hl7");
    let replayed = run(&["--hl7", sample.to_str().unwrap()]);
    assert_eq!(replayed["accepted"].as_u64(), Some(2), "{replayed}");
    let stored = wait_rows(data.path(), "message", 302);
    assert_eq!(stored.len(), 302);
    assert_eq!(stored.iter().filter(|id| id.starts_with("1233445677889")).count(), 2);
}

/// A test CA, and certificates it signs: `(certificate PEM, key PEM)`.
struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "sluice test CA");
        Self { issuer: rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap() }
    }

    fn sign(&self, names: &[&str], common_name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        (params.signed_by(&key, &self.issuer).unwrap().pem(), key.serialize_pem())
    }
}

/// A TLS client of the test CA, presenting `client` (certificate and key PEM) if given.
fn tls_connect(address: SocketAddr, ca: &TestCa, client: Option<&(String, String)>) -> std::io::Result<TlsStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = connect(address);
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    // Complete the handshake now, so a refused client fails here.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_exchange(stream: &mut TlsStream, message: &[u8]) -> std::io::Result<String> {
    stream.write_all(&frame(message))?;
    stream.flush()?;
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(&[0x1C, 0x0D]) {
        stream.read_exact(&mut byte)?;
        bytes.push(byte[0]);
    }
    let text = String::from_utf8(bytes[1..bytes.len() - 2].to_vec()).unwrap();
    Ok(text.split('\r').find(|s| s.starts_with("MSA|")).unwrap_or_default().to_string())
}

#[test]
fn over_mutual_tls_each_client_certificate_names_its_user() {
    let data = tempfile::tempdir().unwrap();
    assert!(admin(data.path(), &["users", "add", "ward7", "--password-stdin"], Some("ward7-password\n")).0);
    assert!(admin(data.path(), &["grants", "add", "ward7", "hl7v2"], None).0);
    let ca = TestCa::new();
    let (server_cert, server_key) = ca.sign(&["localhost"], "sluice");
    let ward7 = ca.sign(&[], "ward7");
    let stranger = ca.sign(&[], "radiology");
    let other_ca = TestCa::new();
    let forged = other_ca.sign(&[], "ward7");
    for (name, text) in [("server.pem", &server_cert), ("server.key", &server_key), ("ca.pem", &ca.issuer.pem())] {
        std::fs::write(data.path().join(name), text).unwrap();
    }
    let config = data.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[[mllp]]\nlisten = \"127.0.0.1:0\"\nsource = \"hl7v2\"\ntls_cert = {:?}\ntls_key = {:?}\ntls_client_ca = {:?}\n",
            data.path().join("server.pem").display().to_string(),
            data.path().join("server.key").display().to_string(),
            data.path().join("ca.pem").display().to_string(),
        ),
    )
    .unwrap();
    let mut server = serving(
        sluice(data.path())
            .env("SLUICE__STREAM__ROLL_INTERVAL", "100ms")
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config),
    );
    let mut line = String::new();
    let address: SocketAddr = loop {
        line.clear();
        assert!(server._stdout.read_line(&mut line).unwrap() > 0);
        if let Some(rest) = line.strip_prefix("MLLP on ") {
            assert!(line.contains(" over TLS for source hl7v2 as the users its client certificates name"), "{line}");
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };

    let mut granted = tls_connect(address, &ca, Some(&ward7)).unwrap();
    assert_eq!(tls_exchange(&mut granted, &message("T-1", "P1", "")).unwrap(), "MSA|AA|T-1");
    let mut ungranted = tls_connect(address, &ca, Some(&stranger)).unwrap();
    assert_eq!(
        tls_exchange(&mut ungranted, &message("T-2", "P1", "")).unwrap(),
        "MSA|AR|T-2|user `radiology` may not post to source `hl7v2`"
    );
    // No certificate, or one another CA signed: the handshake (or the first read) fails, and
    // nothing is answered.
    for client in [None, Some(&forged)] {
        let refused =
            tls_connect(address, &ca, client).and_then(|mut s| tls_exchange(&mut s, &message("T-3", "P1", "")));
        assert!(refused.is_err(), "a client without a certificate of the CA got {refused:?}");
    }
    // Plain MLLP on the TLS port gets nothing either.
    let mut plain = connect(address);
    plain.write_all(&frame(&message("T-4", "P1", ""))).unwrap();
    let mut buffer = [0u8; 64];
    let answered = plain.read(&mut buffer).map(|n| buffer[..n].contains(&0x1C)).unwrap_or(false);
    assert!(!answered, "plain MLLP is not answered on the TLS port");
    assert_eq!(wait_rows(data.path(), "message", 1), ["T-1"]);
    let auth = sluice_auth::AuthStore::open(&data.path().join("auth.db"), Default::default()).unwrap();
    let users: std::collections::BTreeSet<Option<String>> =
        auth.recent_audit(50).unwrap().into_iter().map(|a| a.user).collect();
    assert_eq!(users, [Some("radiology".to_string()), Some("ward7".to_string())].into_iter().collect());
}

/// An `[[mllp]]` listener for a source that does not exist, or whose plugin does not read HL7
/// v2, stops `serve` with the reason (it would refuse every message); a user that does not
/// exist is a warning in the banner that says what to run.
#[test]
fn a_listener_for_a_source_that_cannot_take_hl7_is_refused_at_start() {
    for (source, expected) in
        [("nosuch", "the MLLP listener on 127.0.0.1:"), ("patients", "the MLLP listener on 127.0.0.1:")]
    {
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("sluice.toml");
        std::fs::write(
            &config,
            format!("[[mllp]]\nlisten = \"127.0.0.1:0\"\nsource = \"{source}\"\nuser = \"ward7\"\n"),
        )
        .unwrap();
        let output = sluice(data.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env_remove("SLUICE_LOG")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{source}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let error = stderr.lines().last().unwrap_or_default();
        assert!(error.starts_with(&format!("error: invalid configuration: {expected}")), "{stderr}");
        let reason = match source {
            "nosuch" => {
                "feeds source `nosuch`, which does not exist (sources: admissions, hl7v2, lab_results, patients)"
            }
            _ => {
                "feeds source `patients`, whose plugin does not read HL7 v2 (it reads application/json, application/x-ndjson, \
                  application/ndjson, text/csv, text/tab-separated-values, text/plain)"
            }
        };
        assert!(error.ends_with(reason), "{stderr}");
    }

    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("sluice.toml");
    std::fs::write(&config, "[[mllp]]\nlisten = \"127.0.0.1:0\"\nsource = \"hl7v2\"\nuser = \"nobody\"\n").unwrap();
    let mut server = serving(sluice(data.path()).args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&config));
    let mut banner = String::new();
    while !banner.contains("warning: MLLP user") {
        assert!(server._stdout.read_line(&mut banner).unwrap() > 0, "the banner ends without the warning: {banner}");
    }
    assert!(
        banner.ends_with(
            "warning: MLLP user nobody does not exist: every message gets AR until `sluice users add nobody` and \
             `sluice grants add nobody hl7v2`\n"
        ),
        "{banner}"
    );
}
