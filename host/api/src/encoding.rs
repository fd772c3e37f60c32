//! Request bodies sent with a `Content-Encoding`: gzip, deflate, Brotli and zstd are decoded
//! here, with the body size limit applied to the decoded size, so a small compressed body that
//! expands without end (a zip bomb) is a 413 and never more than the limit in memory. Other
//! codings are a 415 that names the supported ones in `Accept-Encoding`.

use std::io::Read;

use axum::http::{HeaderMap, header};

use crate::error::ApiError;

/// The codings sluice decodes, as `Accept-Encoding` lists them.
pub const SUPPORTED: &str = "gzip, deflate, br, zstd";

/// How a request body is encoded (also the `Content-Encoding` schema of the OpenAPI document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = ContentCoding, rename_all = "lowercase")]
pub(crate) enum Coding {
    /// Not encoded (no header, or `identity`).
    Identity,
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// `deflate`: zlib (RFC 1950); raw deflate data is accepted too, as browsers do.
    Deflate,
    /// `br`.
    #[schema(rename = "br")]
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Coding {
    /// The coding named by the request's `Content-Encoding` header. Several codings applied one
    /// after another, or one sluice does not decode, are a 415.
    pub(crate) fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut coding = Self::Identity;
        for value in headers.get_all(header::CONTENT_ENCODING) {
            let text = value.to_str().unwrap_or("(not text)");
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let this = match name.to_ascii_lowercase().as_str() {
                    "identity" => continue,
                    "gzip" | "x-gzip" => Self::Gzip,
                    "deflate" => Self::Deflate,
                    "br" => Self::Brotli,
                    "zstd" => Self::Zstd,
                    _ => return Err(ApiError::UnsupportedContentEncoding { given: name.to_string() }),
                };
                if coding != Self::Identity {
                    return Err(ApiError::UnsupportedContentEncoding { given: text.to_string() });
                }
                coding = this;
            }
        }
        Ok(coding)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "br",
            Self::Zstd => "zstd",
        }
    }

    /// Decodes `body`: at most `limit` bytes, else [`ApiError::BodyTooLarge`]; data that is not
    /// valid in this coding is a 400 that says so.
    pub(crate) fn decode(self, body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
        let reader: Box<dyn Read + '_> = match self {
            Self::Identity => return Ok(body.to_vec()),
            Self::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
            Self::Deflate if looks_like_zlib(body) => Box::new(flate2::read::ZlibDecoder::new(body)),
            Self::Deflate => Box::new(flate2::read::DeflateDecoder::new(body)),
            Self::Brotli => Box::new(brotli::Decompressor::new(body, 64 * 1024)),
            Self::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(body)
                    .map_err(|e| ApiError::BadRequest(format!("the body is not valid zstd data: {e}")))?,
            ),
        };
        let mut decoded = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut decoded)
            .map_err(|error| ApiError::BadRequest(format!("the body is not valid {} data: {error}", self.name())))?;
        if decoded.len() > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
        Ok(decoded)
    }
}

/// Whether `body` starts with a zlib header (RFC 1950: deflate method, header checksum).
fn looks_like_zlib(body: &[u8]) -> bool {
    matches!(body, [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_supported_coding_round_trips() {
        let data = br#"[{"PatientID": "p1"}]"#.repeat(50);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&data).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&data).unwrap();
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22).write_all(&data).unwrap();
        let zstd = zstd::encode_all(&data[..], 3).unwrap();
        for (name, coding, body) in [
            ("gzip", Coding::Gzip, gzip(&data)),
            ("x-gzip", Coding::Gzip, gzip(&data)),
            ("deflate", Coding::Deflate, zlib.finish().unwrap()),
            ("deflate", Coding::Deflate, raw.finish().unwrap()),
            ("br", Coding::Brotli, br),
            ("zstd", Coding::Zstd, zstd),
            ("identity", Coding::Identity, data.clone()),
        ] {
            assert_eq!(Coding::of(&headers(name)).unwrap(), coding, "{name}");
            assert_eq!(coding.decode(&body, 1 << 20).unwrap(), data, "{name}");
        }
        assert_eq!(Coding::of(&HeaderMap::new()).unwrap(), Coding::Identity);
        assert_eq!(Coding::of(&headers("GZIP")).unwrap(), Coding::Gzip);
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit() {
        let bomb = gzip(&vec![b'['; 64 << 20]);
        assert!(bomb.len() < 100 << 10, "{}", bomb.len());
        let error = Coding::Gzip.decode(&bomb, 8 << 20).unwrap_err();
        assert_eq!(error.to_string(), "request body is larger than the limit of 8388608 bytes");
    }

    #[test]
    fn unknown_codings_and_bad_data_are_named() {
        for value in ["compress", "gzip, br", "snappy"] {
            let error = Coding::of(&headers(value)).unwrap_err();
            assert!(matches!(error, ApiError::UnsupportedContentEncoding { .. }), "{value}");
        }
        let error = Coding::Gzip.decode(b"not gzip at all", 1024).unwrap_err();
        assert!(error.to_string().starts_with("the body is not valid gzip data: "), "{error}");
    }
}
