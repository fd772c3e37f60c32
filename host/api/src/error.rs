//! The one error type of the API: renders as JSON, never leaks internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_auth::AuthError;

/// Everything a request can fail with. User errors say exactly what is wrong; internal errors
/// become a generic 500 whose cause is logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Authentication failed (401, with `WWW-Authenticate`), or was rate-limited/locked (429).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The user may not post to this source.
    #[error("user `{user}` may not post to source `{source_name}`")]
    Forbidden {
        /// The user.
        user: String,
        /// The source.
        source_name: String,
    },
    /// No such source.
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    /// The source name has characters a source name cannot have.
    #[error("invalid source name: use lowercase letters, digits, `_`, `-` and `.`")]
    InvalidSourceName,
    /// More header fields, or more header bytes, than a request may carry (431).
    #[error(
        "the request's headers are too large: {count} fields of {bytes} bytes; at most {max_count} fields of \
         {max_bytes} bytes together are accepted",
        max_count = crate::limits::MAX_HEADERS,
        max_bytes = crate::limits::MAX_HEADER_BYTES
    )]
    HeadersTooLarge {
        /// Fields sent.
        count: usize,
        /// Their bytes, names and values.
        bytes: usize,
    },
    /// No route; the text says what is near (a route without the path's trailing slash).
    #[error("no such endpoint{0}")]
    NotFound(String),
    /// The route does not take the request's method (405, with `Allow`).
    #[error("this endpoint does not take this method; the Allow header lists the ones it takes")]
    MethodNotAllowed,
    /// The content type is not one the source's plugin accepts.
    #[error("unsupported content type `{given}`; source `{source_name}` accepts: {accepted}")]
    UnsupportedContentType {
        /// The request's content type.
        given: String,
        /// The source.
        source_name: String,
        /// Accepted types, comma-separated.
        accepted: String,
    },
    /// The body is encoded (`Content-Encoding`) in a way sluice does not decode (415, with
    /// `Accept-Encoding`).
    #[error("unsupported content encoding `{given}`; sluice decodes one of: {}", crate::encoding::SUPPORTED)]
    UnsupportedContentEncoding {
        /// The request's `Content-Encoding`.
        given: String,
    },
    /// The content type names a character set sluice does not decode (415).
    #[error(
        "unsupported charset `{given}`; send UTF-8, or name a character set of the WHATWG Encoding Standard \
         (windows-1252, iso-8859-15, shift_jis, utf-16le, ...)"
    )]
    UnsupportedCharset {
        /// The content type's `charset` parameter.
        given: String,
    },
    /// The `Idempotency-Key` header is malformed (400).
    #[error("{0}")]
    InvalidIdempotencyKey(String),
    /// A request with the same idempotency key is being handled now (409).
    #[error("a request with this Idempotency-Key is still being handled; retry once it has been answered")]
    IdempotencyKeyInUse,
    /// The idempotency key was used before for a request with other content (422).
    #[error(
        "this Idempotency-Key was used for a request with other content; a key stands for one request: send new \
         content under a new key"
    )]
    IdempotencyKeyReused,
    /// A record with the same id (HL7 v2 MSH-10) is being stored by another request now (409).
    #[error(
        "a record with the same id (such as an HL7 v2 message control id) is being stored by another request; retry once it has been answered"
    )]
    RecordInFlight,
    /// The body is larger than the limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body did not arrive in time (408; the connection is closed).
    #[error("the request body did not arrive within {} s", timeout.as_secs())]
    BodyTimeout {
        /// The limit.
        timeout: std::time::Duration,
    },
    /// More records than the per-request limit.
    #[error("request holds {count} records, more than the limit of {limit} per request")]
    TooManyRecords {
        /// Records found.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The request is malformed (empty body, bad encoding, bad JSON...).
    #[error("{0}")]
    BadRequest(String),
    /// The log cannot take records now; nothing was accepted.
    #[error("the log is unavailable; nothing was accepted, retry later")]
    Unavailable,
    /// The source's plugin failed on this request: which limit it hit, never its internals
    /// (500; `code` names the failure: `plugin_timeout`, `plugin_memory_limit`, `plugin_trap`,
    /// `plugin_output_too_large`, `plugin_invalid_output`, `plugin_unavailable`).
    #[error("{message}; nothing was accepted")]
    Plugin {
        /// The stable code.
        code: &'static str,
        /// What happened, for people.
        message: String,
    },
    /// The plugins are at a host-wide limit now (concurrent calls of the source, memory of all
    /// plugins together): 503, retry later.
    #[error("{reason}; nothing was accepted, retry later")]
    PluginBusy {
        /// Which limit.
        reason: &'static str,
    },
    /// The disk holding the log is below its free-space floor; nothing was accepted (507).
    #[error("the server's disk is nearly full; nothing was accepted, retry later")]
    InsufficientStorage,
    /// The audit log cannot be written now, so the request could not be audited; nothing was
    /// accepted.
    #[error("the audit log cannot be written; nothing was accepted, retry later")]
    AuditUnavailable,
    /// Anything else: the cause is logged, the client sees a generic message.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(AuthError::RateLimited { .. } | AuthError::Locked { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Self::Auth(AuthError::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::UnknownSource(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidSourceName | Self::BadRequest(_) | Self::InvalidIdempotencyKey(_) => StatusCode::BAD_REQUEST,
            Self::IdempotencyKeyInUse | Self::RecordInFlight => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedContentType { .. }
            | Self::UnsupportedContentEncoding { .. }
            | Self::UnsupportedCharset { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge { .. } | Self::TooManyRecords { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Unavailable | Self::AuditUnavailable | Self::PluginBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) | Self::Plugin { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Auth(AuthError::RateLimited { .. }) => "rate_limited",
            Self::Auth(AuthError::Locked { .. }) => "user_locked",
            Self::Auth(AuthError::Unavailable) => "auth_unavailable",
            Self::Auth(_) => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::UnknownSource(_) => "unknown_source",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::InvalidSourceName => "invalid_source_name",
            Self::UnsupportedContentType { .. } => "unsupported_content_type",
            Self::UnsupportedContentEncoding { .. } => "unsupported_content_encoding",
            Self::UnsupportedCharset { .. } => "unsupported_charset",
            Self::InvalidIdempotencyKey(_) => "invalid_idempotency_key",
            Self::IdempotencyKeyInUse => "idempotency_key_in_use",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::RecordInFlight => "record_in_flight",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::TooManyRecords { .. } => "too_many_records",
            Self::HeadersTooLarge { .. } => "headers_too_large",
            Self::BadRequest(_) => "bad_request",
            Self::Unavailable => "log_unavailable",
            Self::AuditUnavailable => "audit_unavailable",
            Self::InsufficientStorage => "insufficient_storage",
            Self::Plugin { code, .. } => code,
            Self::PluginBusy { .. } => "plugin_busy",
            Self::Internal(_) => "internal",
        }
    }
}

/// How every error is answered: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error of an [`ErrorBody`].
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code (`unauthorized`, `body_too_large`, `idempotency_key_reused`, ...).
    pub code: String,
    /// What is wrong, for people; never internals.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let status = self.status();
        let body = ErrorBody { error: ErrorDetail { code: self.code().to_string(), message: self.to_string() } };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Auth(AuthError::RateLimited { retry_after } | AuthError::Locked { retry_after }) => {
                let seconds = retry_after.as_secs().max(1).to_string();
                headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&seconds).expect("digits"));
            }
            Self::Auth(AuthError::Unavailable) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::Auth(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="sluice", charset="UTF-8", Bearer realm="sluice""#),
                );
            }
            Self::Unavailable | Self::AuditUnavailable | Self::PluginBusy { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::InsufficientStorage => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            }
            Self::IdempotencyKeyInUse | Self::RecordInFlight => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::BodyTimeout { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Self::UnsupportedContentEncoding { .. } => {
                headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(crate::encoding::SUPPORTED));
            }
            _ => {}
        }
        response
    }
}
