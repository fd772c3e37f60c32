//! Tries the network from inside the sandbox: `transform` connects to the address in its
//! `address` setting (TCP), sends a UDP datagram there, and resolves the name in its `host`
//! setting, and writes one row per attempt saying how it ended. The host links `wasi:sockets`
//! (CPython's standard library imports it) but refuses every address and every lookup, so each
//! row must say the attempt was denied and nothing must reach the address.
#![allow(missing_docs)]

use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

use sluice_plugin_sdk::{
    Batch, Column, ColumnType, Manifest, Origin, Output, Plugin, Setting, Settings, SplitOutput, TableBuilder,
    TableSchema, Value,
};

pub struct NetAccess {
    address: String,
    host: String,
}

fn table() -> TableSchema {
    TableSchema {
        name: "attempts".into(),
        doc: "One row per network attempt.".into(),
        columns: vec![Column::new("outcome", ColumnType::String, "What the attempt gave.")],
    }
}

impl Plugin for NetAccess {
    fn manifest() -> Manifest {
        Manifest {
            name: "net-access".into(),
            version: "0.1.0".into(),
            doc: "A test plugin that tries to reach the network.".into(),
            content_types: vec!["application/json".into()],
            settings: vec![
                Setting {
                    name: "address".into(),
                    doc: "ip:port to connect to.".into(),
                    default: Some("203.0.113.1:80".into()),
                },
                Setting { name: "host".into(), doc: "A name to resolve.".into(), default: Some("localhost".into()) },
            ],
            tables: vec![table()],
        }
    }

    fn configure(settings: &Settings) -> Result<Self, String> {
        Ok(Self {
            address: settings.get("address").unwrap_or_default().to_string(),
            host: settings.get("host").unwrap_or_default().to_string(),
        })
    }

    fn split(&self, batch: &Batch<'_>) -> SplitOutput {
        let mut out = SplitOutput::new("application/json");
        for (input, payload) in batch.payloads() {
            out.push(payload, Origin { input, record: 0, key: None, id: None });
        }
        out
    }

    fn transform(&self, batch: &Batch<'_>) -> Output {
        let tcp = match TcpStream::connect(&self.address) {
            Ok(_) => "tcp: connected".to_string(),
            Err(e) => format!("tcp: {:?}", e.kind()),
        };
        let udp = match UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"x", &self.address)) {
            Ok(_) => "udp: sent".to_string(),
            Err(e) => format!("udp: {:?}", e.kind()),
        };
        let lookup = match (self.host.as_str(), 80).to_socket_addrs() {
            Ok(_) => "lookup: resolved".to_string(),
            Err(e) => format!("lookup: {:?}", e.kind()),
        };
        let mut rows = TableBuilder::new(&table());
        if batch.payloads().next().is_some() {
            for outcome in [tcp, udp, lookup] {
                rows.push_row(0, &[Value::String(&outcome)]);
            }
        }
        Output { tables: vec![rows], rejected: Vec::new() }
    }
}

sluice_plugin_sdk::export_plugin!(NetAccess);
