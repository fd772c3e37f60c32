//! The `Idempotency-Key` request header (IETF httpapi draft): a sender that retries a request
//! whose answer it lost gets the original answer again and nothing is stored twice.
//!
//! A key belongs to one user and one source. The answer of an accepted request is written to
//! the log in the same atomic write as its records (see `sluice_log::Remembered`), so it holds
//! across restarts and crashes; the log forgets it after its idempotency window (a day by
//! default). The same key with different content is a 422; a key whose first request is still
//! being handled is a 409. Requests that stored nothing (every record rejected, bad requests)
//! are not remembered: sending them again gives the same answer anyway.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::Xxh3;

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The longest key accepted, in bytes.
const MAX_KEY_BYTES: usize = 255;

/// The request's idempotency key, if it sent one: 1 to 255 visible ASCII characters, bare or
/// as a structured-field string (`"…"`, as the draft writes it).
pub(crate) fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(ApiError::InvalidIdempotencyKey("the Idempotency-Key header is given more than once".into()));
    }
    let text = value.to_str().unwrap_or("").trim();
    let key = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) || key.contains('"') {
        return Err(ApiError::InvalidIdempotencyKey(format!(
            "an Idempotency-Key is 1 to {MAX_KEY_BYTES} visible ASCII characters (a UUID, say)"
        )));
    }
    Ok(Some(key.to_string()))
}

/// What identifies a request's content: `xxh3:` and the hex XXH3-128 of its content type and
/// decoded body.
///
/// A fingerprint only tells a sender's own requests under one key apart (keys belong to one
/// user and one source), so it needs no cryptographic strength: XXH3 reads a 250 kB body about
/// twenty times faster than SHA-256, which was the API's largest single cost under load.
pub(crate) fn fingerprint(content_type: &str, body: &[u8]) -> String {
    let mut hash = Xxh3::new();
    hash.update(content_type.as_bytes());
    hash.update(&[0]);
    hash.update(body);
    format!("{FINGERPRINT_PREFIX}{:032x}", hash.digest128())
}

/// How a fingerprint names its algorithm; fingerprints without it are hex SHA-256 (what sluice
/// stored before 2026-12).
const FINGERPRINT_PREFIX: &str = "xxh3:";

/// Whether a remembered fingerprint is that of this request (`computed`, its [`fingerprint`]).
/// An answer remembered by an older sluice holds a SHA-256 fingerprint, which is computed for
/// the comparison, so a retry across an upgrade is still answered as the original.
pub(crate) fn same_content(remembered: &str, computed: &str, content_type: &str, body: &[u8]) -> bool {
    if remembered.starts_with(FINGERPRINT_PREFIX) {
        return remembered == computed;
    }
    let mut hash = Sha256::new();
    hash.update(content_type.as_bytes());
    hash.update([0]);
    hash.update(body);
    remembered == hex::encode(hash.finalize())
}

/// The keys whose first request is being handled now: in this process, and with the shared
/// auth store (several instances) in PostgreSQL too, so that a retry that reaches another
/// instance while the first attempt is still being handled waits (409) instead of storing
/// its records a second time.
#[derive(Clone, Default)]
pub(crate) struct InFlight {
    keys: Arc<Mutex<HashSet<(String, String, String)>>>,
    shared: Option<Arc<sluice_auth::AuthStore>>,
}

/// How long a claim in the shared store lasts when its instance dies holding it (a request
/// holds its claim, taken once its body is read, for at most its plugin and append timeouts).
pub(crate) const SHARED_CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Holds a key as in flight until dropped.
pub(crate) struct Claim {
    keys: Arc<Mutex<HashSet<(String, String, String)>>>,
    entry: (String, String, String),
    /// The shared claim: the store, the key as stored and this claim's holder name.
    shared: Option<(Arc<sluice_auth::AuthStore>, String, String)>,
}

impl InFlight {
    /// Claims in this process and in `store` when it is the shared one.
    pub(crate) fn shared_with(store: &Arc<sluice_auth::AuthStore>) -> Self {
        Self { keys: Arc::default(), shared: store.is_shared().then(|| store.clone()) }
    }

    /// Claims (`source`, `user`, `key`); a 409 while another request holds it, here or on
    /// another instance. The shared store down: 503.
    pub(crate) async fn claim(&self, source: &str, user: &str, key: &str) -> Result<Claim, ApiError> {
        let entry = (source.to_string(), user.to_string(), key.to_string());
        if !self.keys.lock().unwrap_or_else(|e| e.into_inner()).insert(entry.clone()) {
            return Err(ApiError::IdempotencyKeyInUse);
        }
        let mut claim = Claim { keys: self.keys.clone(), entry, shared: None };
        if let Some(store) = &self.shared {
            let (store, stored_key, holder) =
                (store.clone(), format!("{source}\n{user}\n{key}"), sluice_log::unique_token());
            let (asking, stored, named) = (store.clone(), stored_key.clone(), holder.clone());
            let taken = tokio::task::spawn_blocking(move || asking.claim(&stored, &named, SHARED_CLAIM_TTL))
                .await
                .map_err(|e| ApiError::Internal(format!("claim task failed: {e}")))?
                .map_err(|error| {
                    tracing::warn!(%error, "cannot claim a key in the shared store");
                    ApiError::Unavailable
                })?;
            if !taken {
                return Err(ApiError::IdempotencyKeyInUse);
            }
            claim.shared = Some((store, stored_key, holder));
        }
        Ok(claim)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.entry);
        if let Some((store, key, holder)) = self.shared.take() {
            // Given back in the background; should that fail, the claim expires.
            let release = move || {
                if let Err(error) = store.release(&key, &holder) {
                    tracing::warn!(%error, "cannot release a claim in the shared store; it expires");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(release)),
                Err(_) => release(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(HEADER, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn keys_are_read_bare_or_quoted_and_checked() {
        assert_eq!(key(&headers(&[])).unwrap(), None);
        assert_eq!(key(&headers(&["abc-123"])).unwrap().as_deref(), Some("abc-123"));
        assert_eq!(key(&headers(&["\"8e03978e-40d5\""])).unwrap().as_deref(), Some("8e03978e-40d5"));
        for bad in ["", "\"\"", "has space", &"x".repeat(256)] {
            assert!(matches!(key(&headers(&[bad])), Err(ApiError::InvalidIdempotencyKey(_))), "{bad:?}");
        }
        assert!(key(&headers(&["a", "b"])).is_err());
    }

    #[tokio::test]
    async fn a_claimed_key_is_in_use_until_released() {
        let in_flight = InFlight::default();
        let claim = in_flight.claim("s", "u", "k").await.unwrap();
        assert!(matches!(in_flight.claim("s", "u", "k").await, Err(ApiError::IdempotencyKeyInUse)));
        assert!(in_flight.claim("s", "other", "k").await.is_ok(), "keys belong to their user");
        drop(claim);
        assert!(in_flight.claim("s", "u", "k").await.is_ok());
    }

    #[test]
    fn fingerprints_tell_content_apart() {
        assert_eq!(fingerprint("text/csv", b"a"), fingerprint("text/csv", b"a"));
        assert_ne!(fingerprint("text/csv", b"a"), fingerprint("text/csv", b"b"));
        assert_ne!(fingerprint("text/csv", b"a"), fingerprint("application/json", b"a"));
        assert!(fingerprint("text/csv", b"a").starts_with("xxh3:"));
    }

    #[test]
    fn answers_remembered_with_sha256_fingerprints_still_match_their_content() {
        // What sluice stored before fingerprints were XXH3: the hex SHA-256 of "text/csv\0a".
        let legacy = hex::encode(Sha256::digest(b"text/csv\0a"));
        let computed = fingerprint("text/csv", b"a");
        assert!(same_content(&legacy, &computed, "text/csv", b"a"));
        assert!(!same_content(&legacy, &fingerprint("text/csv", b"b"), "text/csv", b"b"));
        assert!(same_content(&computed, &computed, "text/csv", b"a"));
        assert!(!same_content(&computed, &fingerprint("text/csv", b"b"), "text/csv", b"b"));
    }
}
