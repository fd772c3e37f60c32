//! Hostile plugins: each fails with its own error, and other plugins keep serving.

mod common;

use std::path::Path;

use sluice_runtime::{Batch, CallError, LoadError, Plugin, Source, SourceError};
use sluice_test_plugins as testing;

fn patients_still_serve(engine: &sluice_runtime::PluginEngine) {
    let patients = common::load_bundled(engine, "patients.wasm");
    let source = Source::new(patients, Vec::new()).unwrap();
    let out = source
        .transform(&Batch::single("application/json", br#"{"PatientID": "p1"}"#))
        .expect("patients keeps serving");
    assert_eq!(out.output.table("patients").unwrap().len(), 1);
}

fn transform_error(path: &str) -> (CallError, Source) {
    let engine = common::engine(common::tight_config());
    let source = Source::new(common::load(&engine, path), Vec::new()).unwrap();
    let error = match source.transform(&Batch::single("application/json", b"{}")) {
        Err(SourceError::Call(error)) => error,
        other => panic!("expected a call error, got {other:?}"),
    };
    patients_still_serve(&engine);
    (error, source)
}

#[test]
fn an_endless_loop_times_out() {
    let (error, _) = transform_error(testing::ENDLESS_LOOP);
    assert!(matches!(&error, CallError::Timeout { plugin, .. } if plugin == "endless-loop@0.1.0"), "{error:?}");
    assert_eq!(error.to_string(), "plugin endless-loop@0.1.0 timed out: the call ran longer than 300ms");
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let (error, _) = transform_error(testing::MEMORY_BOMB);
    assert_eq!(error.to_string(), "plugin memory-bomb@0.1.0 exceeded its memory limit of 33554432 bytes");
}

#[test]
fn a_panic_is_a_trap_with_its_message_and_the_next_batch_gets_a_fresh_instance() {
    let (error, source) = transform_error(testing::PANICS);
    let message = error.to_string();
    assert!(message.starts_with("plugin panics@0.1.0 trapped: "), "{message}");
    assert!(message.contains("deliberate panic in a test plugin"), "{message}");
    // The poisoned instance was dropped: an empty batch (no panic) now succeeds.
    let empty = sluice_runtime::BatchBuilder::new("application/json").finish();
    assert!(source.transform(&empty).is_ok());
}

#[test]
fn oversized_output_is_refused() {
    let (error, _) = transform_error(testing::OVERSIZED_OUTPUT);
    assert!(matches!(error, CallError::OutputTooLarge { bytes, limit: 1_048_576, .. } if bytes > 8 << 20), "{error:?}");
}

#[test]
fn an_ungranted_import_is_refused_at_load() {
    let engine = common::engine(common::tight_config());
    let error = Plugin::load_file(&engine, Path::new(testing::CUSTOM_IMPORT)).unwrap_err();
    match &error {
        LoadError::UngrantedImport { import, .. } => assert_eq!(import, "run-command"),
        other => panic!("expected UngrantedImport, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!("plugin {} imports `run-command`, which sluice does not grant to plugins", testing::CUSTOM_IMPORT)
    );
    patients_still_serve(&engine);
}

#[test]
fn sockets_are_linked_but_every_address_and_lookup_is_denied() {
    // A real listener the plugin is told to reach: nothing may arrive.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let udp = std::net::UdpSocket::bind(&address).unwrap();
    udp.set_nonblocking(true).unwrap();

    let engine = common::engine(common::tight_config());
    let settings = vec![("address".to_string(), address), ("host".to_string(), "localhost".to_string())];
    let source = Source::new(common::load(&engine, testing::NET_ACCESS), settings).unwrap();
    let out = source.transform(&Batch::single("application/json", b"{}")).unwrap().output;
    let attempts = out.table("attempts").expect("the plugin reports its attempts");
    let outcomes: Vec<String> = (0..attempts.len())
        .map(|row| match attempts.columns[0].cell(row) {
            sluice_runtime::Cell::String(text) => text.to_string(),
            other => panic!("unexpected cell {other:?}"),
        })
        .collect();
    // Rust's standard library reports a refused name lookup as an uncategorized error (it maps
    // the WASI error through getaddrinfo's codes); what matters is that nothing resolved.
    assert_eq!(outcomes, ["tcp: PermissionDenied", "udp: PermissionDenied", "lookup: Uncategorized"]);
    assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "a connection arrived");
    let mut buf = [0u8; 8];
    assert_eq!(udp.recv_from(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "a datagram arrived");
}

#[test]
fn a_plugin_for_another_contract_version_is_refused_naming_both_versions() {
    let engine = common::engine(common::tight_config());
    let error = Plugin::load_file(&engine, Path::new(testing::FUTURE_CONTRACT)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "plugin {} was built for contract sluice:plugin@9.0.0; this sluice supports sluice:plugin@0.1.0, sluice:plugin@0.2.0. \
             Rebuild the plugin against a supported version of wit/plugin.wit",
            testing::FUTURE_CONTRACT
        )
    );
    patients_still_serve(&engine);
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let engine = common::engine(common::tight_config());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"not a component").unwrap();
    let error = Plugin::load_file(&engine, &path).unwrap_err();
    assert!(matches!(error, LoadError::Compile { .. }), "{error:?}");
}

#[test]
fn a_plugin_file_over_the_size_limit_is_refused_before_reading() {
    let config = sluice_runtime::SandboxConfig { max_wasm: bytesize::ByteSize(1000), ..common::tight_config() };
    let engine = common::engine(config);
    let error = Plugin::load_file(&engine, Path::new(testing::PANICS)).unwrap_err();
    assert!(matches!(error, LoadError::TooLarge { limit: 1000, .. }), "{error:?}");
}

#[test]
fn a_brief_split_gives_up_on_a_stuck_plugin_long_before_the_call_timeout() {
    let call_timeout = std::time::Duration::from_secs(30);
    let engine = common::engine(sluice_runtime::SandboxConfig { call_timeout, ..common::tight_config() });
    let source = Source::new(common::load(&engine, testing::ENDLESS_LOOP), Vec::new()).unwrap();
    let started = std::time::Instant::now();
    let outcome = source.split_briefly(&Batch::single("application/json", b"{}"));
    // Not a speed check: the brief deadline is tens of milliseconds, the configured one 30 s.
    assert!(started.elapsed() < call_timeout, "the brief split waited for the full call timeout");
    assert!(matches!(outcome, Ok(None)), "{outcome:?}");
    patients_still_serve(&engine);
}

#[test]
fn a_brief_split_of_a_quick_plugin_is_the_plain_split() {
    let engine = common::engine(common::tight_config());
    let source = Source::new(common::load_bundled(&engine, "patients.wasm"), Vec::new()).unwrap();
    let batch = Batch::single("application/json", br#"[{"PatientID": "p1"}, {"PatientID": "p2"}, {"Nope": 1}]"#);
    let brief = source.split_briefly(&batch).unwrap().expect("split within the brief deadline").output;
    let plain = source.split(&batch).unwrap().output;
    assert_eq!(brief.records.len(), 2);
    assert_eq!(format!("{brief:?}"), format!("{plain:?}"));
}

/// A plugin that writes to its stderr in a brief split on an async thread (a panic message, a
/// Python traceback) gives the body up to the pool, where the trap is reported with its message;
/// before, the call panicked the server's thread and the request got no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_split_of_a_plugin_that_writes_its_stderr_gives_the_body_to_the_pool() {
    let engine = common::engine(common::tight_config());
    let source = std::sync::Arc::new(Source::new(common::load(&engine, testing::PANICS), Vec::new()).unwrap());
    let brief = {
        let source = source.clone();
        tokio::spawn(async move { source.split_briefly(&Batch::single("application/json", b"panic in split")) })
            .await
            .expect("the async task did not panic")
    };
    assert!(matches!(brief, Ok(None)), "{brief:?}");
    let pooled =
        tokio::task::spawn_blocking(move || source.split(&Batch::single("application/json", b"panic in split")))
            .await
            .unwrap();
    match pooled {
        Err(SourceError::Call(error)) => assert!(error.to_string().contains("deliberate panic in split"), "{error}"),
        other => panic!("expected the trap, got {other:?}"),
    }
}
