//! Authentication of a request: parse the header, answer from the verification cache or verify
//! off the async threads, audit failures.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use sluice_auth::{AuditEntry, AuthError, Credentials, Outcome, Principal};

use crate::error::ApiError;
use crate::state::ApiState;

/// Verifies the request's credentials. Failures are audited and counted.
pub(crate) async fn authenticate(
    state: &ApiState,
    headers: &HeaderMap,
    client: IpAddr,
    source: Option<&str>,
    request_id: &str,
) -> Result<Principal, ApiError> {
    let mut given = headers.get_all(header::AUTHORIZATION).iter();
    let credentials = match (given.next(), given.next()) {
        (None, _) => Err(AuthError::Missing),
        // Which one would count is a guess: one could pass while the sender meant the other.
        (Some(_), Some(_)) => Err(AuthError::Malformed("the Authorization header is given more than once; send one")),
        (Some(value), None) => {
            value.to_str().map_err(|_| AuthError::Malformed("header is not ASCII")).and_then(Credentials::from_header)
        }
    };
    let claimed = credentials.as_ref().ok().and_then(|c| c.claimed_user().map(str::to_string));
    let result = match credentials {
        // A cached verification is answered here; only a full one (argon2, tens of
        // milliseconds) leaves the async thread.
        Ok(credentials) => match state.auth.authenticate_cached(&credentials) {
            Some(principal) => Ok(principal),
            None => {
                let auth = state.auth.clone();
                tokio::task::spawn_blocking(move || auth.authenticate_uncached(&credentials, client))
                    .await
                    .map_err(|e| ApiError::Internal(format!("authentication task failed: {e}")))?
            }
        },
        Err(error) => Err(error),
    };
    result.map_err(|error| {
        let reason = match &error {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::BadPassword => "bad_password",
            AuthError::BadToken => "bad_token",
            AuthError::TokenRevoked => "token_revoked",
            AuthError::TokenExpired => "token_expired",
            AuthError::Locked { .. } => "locked",
            AuthError::RateLimited { .. } => "rate_limited",
            AuthError::Unavailable => "store_unavailable",
        };
        metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => reason).increment(1);
        state.auth.audit(AuditEntry {
            at: now_rfc3339(),
            user: claimed,
            source: source.map(str::to_string),
            request_id: request_id.to_string(),
            client: Some(client.to_string()),
            accepted: 0,
            rejected: 0,
            outcome: Outcome::AuthFailed,
            detail: Some(reason.to_string()),
            attempts: 1,
        });
        ApiError::Auth(error)
    })
}

/// Current time, RFC 3339, UTC, microseconds.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
