//! TLS to PostgreSQL. The URL's `sslmode` decides whether it is used (`disable`: never;
//! `prefer`, the default: when the server offers it; `require`: always, or no connection); when
//! it is, the server's certificate is always verified, chain and host name, against
//! `auth.postgres_ca` or, without it, the Mozilla roots. A server whose certificate does not
//! verify is refused, never used without TLS instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// What a libpq URL says about TLS that the PostgreSQL driver does not read itself: `sslmode`
/// `verify-ca` and `verify-full` (read as `require`, since sluice always verifies as
/// `verify-full` does) and `sslrootcert` (the certificate authority's file, as
/// `auth.postgres_ca`). Returns the URL without them and that file, if named.
pub(crate) fn libpq_tls_options(url: &str) -> Result<(String, Option<PathBuf>)> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), None)) };
    let mut kept = Vec::new();
    let mut root_certificate = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", "verify-ca" | "verify-full")) => kept.push("sslmode=require".to_string()),
            Some(("sslrootcert", path)) => {
                let path = percent_encoding::percent_decode_str(path)
                    .decode_utf8()
                    .map_err(|_| Error::InvalidUrl("sslrootcert is not UTF-8".into()))?;
                root_certificate = Some(PathBuf::from(path.as_ref()));
            }
            _ => kept.push(pair.to_string()),
        }
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, root_certificate))
}

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
        assert_eq!(
            error,
            format!(
                "cannot use the PostgreSQL certificate authority file {} (auth.postgres_ca or sslrootcert): no certificate in the file",
                empty.display()
            )
        );
        let missing = dir.path().join("missing.pem");
        let error = connector(Some(&missing)).err().unwrap().to_string();
        assert!(
            error.starts_with(&format!("cannot use the PostgreSQL certificate authority file {} ", missing.display()))
        );
        assert!(connector(None).is_ok(), "the Mozilla roots");
    }

    #[test]
    fn libpq_tls_options_are_read_and_the_rest_of_the_url_is_kept() {
        let base = "postgres://sluice:pw@db.example:5432/sluice";
        assert_eq!(libpq_tls_options(base).unwrap(), (base.to_string(), None));
        for (query, kept, root) in [
            ("?sslmode=verify-full", "?sslmode=require", None),
            ("?sslmode=verify-ca&connect_timeout=5", "?sslmode=require&connect_timeout=5", None),
            ("?sslmode=disable", "?sslmode=disable", None),
            (
                "?connect_timeout=5&sslrootcert=%2Fetc%2Fpg%20ca.pem&sslmode=require",
                "?connect_timeout=5&sslmode=require",
                Some("/etc/pg ca.pem"),
            ),
            ("?sslrootcert=/etc/ca.pem", "", Some("/etc/ca.pem")),
        ] {
            let (url, file) = libpq_tls_options(&format!("{base}{query}")).unwrap();
            assert_eq!((url, file), (format!("{base}{kept}"), root.map(PathBuf::from)), "{query}");
        }
    }
}
