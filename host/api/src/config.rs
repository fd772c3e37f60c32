//! `[server]`: the listener and every limit a request and a connection meet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::limits::ApiLimits;
use crate::server::ServerLimits;

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Largest request body accepted, as sent and once decompressed; larger is 413.
    pub max_body: ByteSize,
    /// Most records per request; more is 413.
    pub max_records_per_request: usize,
    /// Deepest JSON nesting accepted; deeper is 400.
    pub max_json_depth: usize,
    /// A request's headers must arrive within this; an idle keep-alive connection is closed
    /// after it too.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request's body must arrive within this once its headers have (408 otherwise).
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Client connections held at once (0: derived from the open-file limit, keeping a quarter
    /// of it, at least 256, for sluice's own files and sockets; at most 8,192).
    pub max_connections: usize,
    /// Client connections held at once from one address.
    pub max_connections_per_address: usize,
    /// At shutdown, how long requests in progress may take before their connections are cut.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = ApiLimits::default();
        let connections = ServerLimits::default();
        Self {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            max_body: ByteSize(limits.max_body_bytes as u64),
            max_records_per_request: limits.max_records,
            max_json_depth: limits.max_json_depth,
            header_timeout: connections.header_timeout,
            body_timeout: limits.body_timeout,
            max_connections: 0,
            max_connections_per_address: connections.max_connections_per_address,
            drain_timeout: connections.drain,
        }
    }
}

/// A `[server]` section that cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerConfigError {
    /// `listen` is not an address and port.
    #[error("server.listen `{0}` is not ADDRESS:PORT")]
    Listen(String),
    /// Only one of the TLS files is set.
    #[error("server.tls_cert and server.tls_key must be set together")]
    HalfTls,
    /// A limit no request or connection could meet.
    #[error(transparent)]
    Value(#[from] sluice_config::ValueError),
}

impl ServerConfig {
    /// Checks what the types cannot: the address parses, TLS files come in pairs, no limit
    /// refuses every request or connection.
    pub fn check(&self) -> Result<(), ServerConfigError> {
        self.listen_address()?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ServerConfigError::HalfTls);
        }
        let millisecond = Duration::from_millis(1);
        sluice_config::check(
            "server",
            [
                ("max_body", "at least 1 KiB", self.max_body < ByteSize::kib(1)),
                ("max_records_per_request", "at least 1", self.max_records_per_request == 0),
                ("max_json_depth", "at least 2 (an array of records)", self.max_json_depth < 2),
                ("header_timeout", "at least 1ms", self.header_timeout < millisecond),
                ("body_timeout", "at least 1ms", self.body_timeout < millisecond),
                ("max_connections_per_address", "at least 1", self.max_connections_per_address == 0),
            ],
        )?;
        Ok(())
    }

    /// `listen`, parsed.
    pub fn listen_address(&self) -> Result<SocketAddr, ServerConfigError> {
        self.listen.parse().map_err(|_| ServerConfigError::Listen(self.listen.clone()))
    }

    /// The per-request limits.
    pub fn limits(&self) -> ApiLimits {
        ApiLimits {
            max_body_bytes: usize::try_from(self.max_body.as_u64()).unwrap_or(usize::MAX),
            max_records: self.max_records_per_request,
            max_json_depth: self.max_json_depth,
            body_timeout: self.body_timeout,
        }
    }

    /// The connection limits, under an open-file limit of `open_files`.
    pub fn connection_limits(&self, open_files: u64) -> ServerLimits {
        ServerLimits {
            header_timeout: self.header_timeout,
            max_connections: match self.max_connections {
                0 => ServerLimits::for_open_files(open_files),
                n => n,
            },
            max_connections_per_address: self.max_connections_per_address,
            drain: self.drain_timeout,
        }
    }
}
