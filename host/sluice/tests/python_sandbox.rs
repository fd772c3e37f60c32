//! A hostile plugin in Python (`plugins/testing-python/hostile`) is contained by the sandbox with
//! the same clear errors as the Rust ones (`host/runtime/tests/sandbox.rs`): an endless loop
//! times out, a memory bomb hits the instance's limit, an exception is a trap naming it, and
//! sockets reach nothing; after each, a fresh instance serves the next batch.

mod common;

use std::sync::Arc;
use std::time::Duration;

use sluice_runtime::{Batch, CallError, Cell, Plugin, PluginEngine, SandboxConfig, Source, SourceError};

fn source(plugin: &Arc<Plugin>, settings: &[(&str, &str)]) -> Source {
    let settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Source::new(plugin.clone(), settings).unwrap()
}

fn call_error(source: &Source) -> CallError {
    match source.transform(&Batch::single("application/json", br#"{"value": "x"}"#)) {
        Err(SourceError::Call(error)) => error,
        other => panic!("expected a call error, got {other:?}"),
    }
}

fn rows(source: &Source) -> Vec<String> {
    let out = source.transform(&Batch::single("application/json", br#"{"value": "x"}"#)).unwrap().output;
    let table = out.table("outcomes").expect("rows");
    (0..table.len())
        .map(|row| match table.columns[0].cell(row) {
            Cell::String(text) => text.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn a_hostile_python_plugin_is_contained_with_clear_errors() {
    let wasm = common::build_plugin("plugins/testing-python/hostile", "hostile-python.wasm");
    let config = SandboxConfig {
        call_timeout: Duration::from_secs(2),
        max_memory: bytesize::ByteSize::mib(128),
        ..SandboxConfig::default()
    };
    let engine = PluginEngine::new(config, None).unwrap();
    let plugin = Arc::new(Plugin::load_file(&engine, &wasm).unwrap());
    assert_eq!(plugin.id(), "hostile-python@0.1.0");

    let looping = source(&plugin, &[("mode", "loop")]);
    assert_eq!(call_error(&looping).to_string(), "plugin hostile-python@0.1.0 timed out: the call ran longer than 2s");

    let bomb = source(&plugin, &[("mode", "bomb")]);
    assert_eq!(
        call_error(&bomb).to_string(),
        "plugin hostile-python@0.1.0 exceeded its memory limit of 134217728 bytes"
    );

    let raising = source(&plugin, &[("mode", "raise")]);
    let message = call_error(&raising).to_string();
    assert!(message.starts_with("plugin hostile-python@0.1.0 trapped: "), "{message}");
    assert!(message.ends_with("RuntimeError: deliberate failure in a test plugin"), "{message}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let sockets = source(&plugin, &[("mode", "socket"), ("address", &address)]);
    // A refused name lookup reaches Python as getaddrinfo's error (socket.gaierror), as it
    // reaches Rust as an uncategorized one: nothing resolved.
    assert_eq!(rows(&sockets), ["tcp: PermissionError", "lookup: gaierror"]);
    assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "a connection arrived");

    // Each failed call dropped its instance; the sources still serve with fresh ones.
    let ok = source(&plugin, &[("mode", "ok")]);
    assert_eq!(rows(&ok), ["x"]);
    assert_eq!(looping.instances_made(), 1);
}
