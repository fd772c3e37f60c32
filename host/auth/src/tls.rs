//! TLS to PostgreSQL. The URL's `sslmode` decides whether it is used (`disable`: never;
//! `prefer`, the default: when the server offers it; `require`: always, or no connection); when
//! it is, the server's certificate is always verified, chain and host name, against
//! `auth.postgres_ca` or, without it, the Mozilla roots. A server whose certificate does not
//! verify is refused, never used without TLS instead.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// The TLS connector of every connection to the PostgreSQL store: trusts the certificates in
/// the PEM file `ca`, or the Mozilla roots when there is none.
pub(crate) fn connector(ca: Option<&Path>) -> Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let unreadable = |reason: String| Error::PostgresCa { path: path.to_path_buf(), reason };
            for certificate in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(e.to_string()))? {
                let certificate = certificate.map_err(|e| unreadable(e.to_string()))?;
                roots.add(certificate).map_err(|e| unreadable(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(unreadable("no certificate in the file".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Postgres(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_file_that_holds_no_certificate_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = connector(Some(&empty)).err().unwrap().to_string();
        assert_eq!(error, format!("cannot use auth.postgres_ca {}: no certificate in the file", empty.display()));
        let missing = dir.path().join("missing.pem");
        let error = connector(Some(&missing)).err().unwrap().to_string();
        assert!(error.starts_with(&format!("cannot use auth.postgres_ca {}: ", missing.display())), "{error}");
        assert!(connector(None).is_ok(), "the Mozilla roots");
    }
}
