//! Per-request limits.

/// Most header fields one request may carry; more is a 431 that says so.
pub const MAX_HEADERS: usize = 100;

/// Most bytes a request's header fields may take together (names and values); more is a 431
/// that says so.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Limits on one request. Each breach has its own status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest body accepted, in bytes (default 8 MiB); larger is 413.
    pub max_body_bytes: usize,
    /// Most records one request may carry (default 10,000); more is 413.
    pub max_records: usize,
    /// Deepest JSON nesting accepted (default 32); deeper is 400.
    pub max_json_depth: usize,
    /// How long the body may take to arrive once the headers have (default 60 s); longer is
    /// 408 and the connection is closed.
    pub body_timeout: std::time::Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            max_records: 10_000,
            max_json_depth: 32,
            body_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// The deepest nesting of arrays and objects in `body`, scanning past strings. Stops early once
/// `limit` is exceeded.
pub(crate) fn json_depth(body: &[u8], limit: usize) -> usize {
    let (mut depth, mut max, mut at) = (0usize, 0usize, 0usize);
    while at < body.len() {
        match body[at] {
            b'"' => {
                // Jump through the string: to its closing quote, past escapes.
                at += 1;
                loop {
                    match body.get(at..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
                        Some(found) if body[at + found] == b'"' => {
                            at += found;
                            break;
                        }
                        Some(found) => at += found + 2,
                        None => {
                            at = body.len();
                            break;
                        }
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
                if max > limit {
                    return max;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    max
}

#[cfg(test)]
mod tests {
    use super::json_depth;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": "[[[{{{"}]}"#, 100), 3);
        assert_eq!(json_depth(br#""{\"x\": [1]}""#, 100), 0);
        assert_eq!(json_depth(&[b'['; 1000], 32), 33);
        assert_eq!(json_depth(br#"["a\\", ["b\"]", [1]]]"#, 100), 3, "escaped backslash, then escaped quote");
        assert_eq!(json_depth(br#"["unterminated \"#, 100), 1);
        assert_eq!(json_depth(br#"["unterminated [[["#, 100), 1);
    }

    /// The plain byte-by-byte scan, kept as the reference for the fast one.
    fn reference_depth(body: &[u8], limit: usize) -> usize {
        let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
        for &b in body {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                    if max > limit {
                        return max;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    #[test]
    fn depth_agrees_with_the_byte_by_byte_scan() {
        // Every string of up to 7 bytes over the characters that matter, and a few longer ones.
        let alphabet = b"[]{}\"\\a";
        let mut checked = 0;
        for len in 0..=7u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let body: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = alphabet[n % alphabet.len()];
                        n /= alphabet.len();
                        b
                    })
                    .collect();
                for limit in [1, 3, 100] {
                    assert_eq!(
                        json_depth(&body, limit),
                        reference_depth(&body, limit),
                        "{:?}",
                        String::from_utf8_lossy(&body)
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 100_000);
    }
}
