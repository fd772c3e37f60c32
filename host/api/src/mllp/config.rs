//! `[[mllp]]`: one MLLP listener per entry, each feeding one source.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// `[[mllp]]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MllpConfig {
    /// Address and port to listen on (`127.0.0.1:2575`).
    pub listen: String,
    /// The source every message of this listener goes to.
    pub source: String,
    /// The account whose grants apply: it must hold a grant to `source` (else every message
    /// gets AR), and the audit log names it. Not with `tls_client_ca`, where each connection's
    /// client certificate names its user.
    #[serde(default)]
    pub user: Option<String>,
    /// PEM certificate chain: with `tls_key`, the listener speaks MLLP over TLS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the CA that signs the senders' client certificates (mutual TLS): a
    /// connection without a certificate it signed is refused, and the certificate's subject
    /// common name (CN) is the sluice user the connection posts as.
    #[serde(default)]
    pub tls_client_ca: Option<PathBuf>,
    /// Plain MLLP on a non-loopback address carries patient data unencrypted and unauthenticated:
    /// refused at start unless this is true (then a warning is logged).
    #[serde(default)]
    pub allow_plain_remote: bool,
    /// Largest message accepted; a larger one gets AR and the connection goes on.
    #[serde(default = "default_max_message")]
    pub max_message: ByteSize,
    /// A connection with no message for this long is closed.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Connections held at once; more are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_message() -> ByteSize {
    ByteSize::mib(16)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

fn default_max_connections() -> usize {
    64
}

/// An `[[mllp]]` entry that cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MllpConfigError {
    /// `listen` is not an address and port.
    #[error("mllp.listen `{0}` is not ADDRESS:PORT")]
    Listen(String),
    /// Plain MLLP on a non-loopback address without saying so.
    #[error(
        "mllp.listen {0} is not a loopback address: plain MLLP there carries patient data unencrypted and \
         unauthenticated; set allow_plain_remote = true on this listener to accept that"
    )]
    PlainRemote(SocketAddr),
    /// `source` or `user` is not a valid name.
    #[error("mllp.{0} `{1}` is not a valid name (letters, digits, `_` and `-`)")]
    Name(&'static str, String),
    /// Who the connections post as is not said, or said twice.
    #[error(
        "mllp listener {0}: give either `user` (every connection posts as it) or `tls_client_ca` (each client \
         certificate's common name is its user), not both and not neither"
    )]
    Who(String),
    /// Only one of the TLS files is set, or a client CA without a server certificate.
    #[error("mllp listener {0}: tls_cert and tls_key go together, and tls_client_ca needs them")]
    HalfTls(String),
    /// A limit no message or connection could meet.
    #[error("mllp listener {listen}: {error}")]
    Value {
        /// The listener.
        listen: String,
        /// The value.
        error: sluice_config::ValueError,
    },
    /// A TLS file cannot be read or used.
    #[error("mllp listener {listen}: {what}")]
    Tls {
        /// The listener.
        listen: String,
        /// What failed, with the file.
        what: String,
    },
}

impl MllpConfig {
    /// The address to bind, checked: plain MLLP only on loopback unless allowed, who posts said
    /// once, TLS files in pairs.
    pub fn listen_address(&self) -> Result<SocketAddr, MllpConfigError> {
        let address: SocketAddr = self.listen.parse().map_err(|_| MllpConfigError::Listen(self.listen.clone()))?;
        if self.tls_cert.is_some() != self.tls_key.is_some()
            || (self.tls_client_ca.is_some() && self.tls_cert.is_none())
        {
            return Err(MllpConfigError::HalfTls(self.listen.clone()));
        }
        if !address.ip().is_loopback() && self.tls_cert.is_none() && !self.allow_plain_remote {
            return Err(MllpConfigError::PlainRemote(address));
        }
        if !sluice_auth::is_valid_name(&self.source) {
            return Err(MllpConfigError::Name("source", self.source.clone()));
        }
        match (&self.user, &self.tls_client_ca) {
            (Some(user), None) if !sluice_auth::is_valid_name(user) => {
                return Err(MllpConfigError::Name("user", user.clone()));
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(MllpConfigError::Who(self.listen.clone())),
        }
        let limits = sluice_config::check(
            "mllp",
            [
                ("max_message", "at least 1 KiB", self.max_message < ByteSize::kib(1)),
                ("idle_timeout", "at least 1s", self.idle_timeout < Duration::from_secs(1)),
                ("max_connections", "at least 1", self.max_connections == 0),
            ],
        );
        limits.map_err(|error| MllpConfigError::Value { listen: self.listen.clone(), error })?;
        Ok(address)
    }

    /// The TLS side of the listener, when it has one: the server certificate, and with a client
    /// CA, client certificates required and verified.
    pub fn tls(&self) -> Result<Option<tokio_rustls::TlsAcceptor>, MllpConfigError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let fail = |what: String| MllpConfigError::Tls { listen: self.listen.clone(), what };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| fail(format!("cannot read the certificate {}: {e}", cert.display())))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| fail(format!("cannot read the private key {}: {e}", key.display())))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?;
        let builder = match &self.tls_client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in CertificateDer::pem_file_iter(ca)
                    .map_err(|e| fail(format!("cannot read the client CA {}: {e}", ca.display())))?
                {
                    let certificate =
                        certificate.map_err(|e| fail(format!("cannot read the client CA {}: {e}", ca.display())))?;
                    roots.add(certificate).map_err(|e| fail(format!("the client CA {}: {e}", ca.display())))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| fail(format!("the client CA {}: {e}", ca.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| fail(format!("the certificate and key: {e}")))?;
        Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(listen: &str) -> MllpConfig {
        toml_entry(&format!("listen = \"{listen}\"\nsource = \"hl7v2\"\nuser = \"ward7\"\n"))
    }

    fn toml_entry(text: &str) -> MllpConfig {
        serde_json::from_value(toml_to_json(text)).unwrap()
    }

    /// A tiny `key = "value"` reader: enough for these tests without a TOML dependency here.
    fn toml_to_json(text: &str) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line.split_once('=').unwrap();
            let value = value.trim();
            let json = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(text) => serde_json::Value::String(text.into()),
                None => serde_json::from_str(value).unwrap(),
            };
            map.insert(key.trim().into(), json);
        }
        serde_json::Value::Object(map)
    }

    #[test]
    fn defaults_and_the_plain_remote_rule() {
        let local = entry("127.0.0.1:2575");
        assert_eq!(local.listen_address().unwrap(), "127.0.0.1:2575".parse().unwrap());
        assert_eq!(
            (local.max_message, local.idle_timeout, local.max_connections),
            (ByteSize::mib(16), Duration::from_secs(300), 64)
        );
        assert_eq!(
            entry("0.0.0.0:2575").listen_address().unwrap_err().to_string(),
            "mllp.listen 0.0.0.0:2575 is not a loopback address: plain MLLP there carries patient data unencrypted \
             and unauthenticated; set allow_plain_remote = true on this listener to accept that"
        );
        let allowed =
            toml_entry("listen = \"0.0.0.0:2575\"\nsource = \"hl7v2\"\nuser = \"ward7\"\nallow_plain_remote = true");
        assert!(allowed.listen_address().is_ok());
        assert_eq!(entry("nowhere").listen_address().unwrap_err(), MllpConfigError::Listen("nowhere".into()));
    }

    #[test]
    fn who_posts_is_said_once_and_tls_files_come_in_pairs() {
        let neither = toml_entry("listen = \"127.0.0.1:2575\"\nsource = \"hl7v2\"");
        assert_eq!(neither.listen_address().unwrap_err(), MllpConfigError::Who("127.0.0.1:2575".into()));
        let both = toml_entry(
            "listen = \"127.0.0.1:2575\"\nsource = \"hl7v2\"\nuser = \"ward7\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_ca = \"ca.pem\"",
        );
        assert_eq!(both.listen_address().unwrap_err(), MllpConfigError::Who("127.0.0.1:2575".into()));
        let half =
            toml_entry("listen = \"127.0.0.1:2575\"\nsource = \"hl7v2\"\nuser = \"ward7\"\ntls_cert = \"c.pem\"");
        assert_eq!(half.listen_address().unwrap_err(), MllpConfigError::HalfTls("127.0.0.1:2575".into()));
        let remote_tls = toml_entry(
            "listen = \"0.0.0.0:2575\"\nsource = \"hl7v2\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_ca = \"ca.pem\"",
        );
        assert!(remote_tls.listen_address().is_ok(), "TLS may listen on any address");
    }
}
