//! `[[mllp]]`: one MLLP listener per entry, each feeding one source.

use std::net::SocketAddr;
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
    /// gets AR), and the audit log names it.
    pub user: String,
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
}

impl MllpConfig {
    /// The address to bind, checked: plain MLLP only on loopback unless allowed.
    pub fn listen_address(&self) -> Result<SocketAddr, MllpConfigError> {
        let address: SocketAddr = self.listen.parse().map_err(|_| MllpConfigError::Listen(self.listen.clone()))?;
        if !address.ip().is_loopback() && !self.allow_plain_remote {
            return Err(MllpConfigError::PlainRemote(address));
        }
        if !sluice_auth::is_valid_name(&self.source) {
            return Err(MllpConfigError::Name("source", self.source.clone()));
        }
        if !sluice_auth::is_valid_name(&self.user) {
            return Err(MllpConfigError::Name("user", self.user.clone()));
        }
        Ok(address)
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
}
