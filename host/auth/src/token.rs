//! API tokens: `slc_<id>_<secret>`; the id is public, only a SHA-256 of the secret is stored.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A token just created: the only time its secret is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Public id, shown by `tokens list` and used by `tokens revoke`.
    pub id: String,
    /// The full token to send as `Authorization: Bearer <token>`.
    pub token: String,
}

/// A fresh random token: a 12-hex-digit id and a 256-bit secret.
pub(crate) fn generate() -> (NewToken, String) {
    let mut rng = rand::rng();
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let hash = secret_hash(&secret);
    (NewToken { token: format!("slc_{id}_{secret}"), id }, hash)
}

/// Splits a token into id and secret.
pub(crate) fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("slc_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty()).then_some((id, secret))
}

/// Hex SHA-256 of a secret. A 256-bit random secret needs no slow hash.
pub(crate) fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two equal-length strings in constant time.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_back_and_only_their_hash_is_kept() {
        let (new, hash) = generate();
        let (id, secret) = parse(&new.token).unwrap();
        assert_eq!(id, new.id);
        assert_eq!(secret_hash(secret), hash);
        assert!(!hash.contains(secret));
        assert!(parse("slc_short_x").is_none());
        assert!(parse("bearer-something").is_none());
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
    }
}
