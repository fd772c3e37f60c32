//! Where JSON values begin and end, found by structure alone: brackets, braces, string quotes and
//! escapes, commas.
//!
//! The general reader parses a body value by value, so that one value serde_json refuses (a
//! number out of range such as `1e400`, a lone surrogate escape such as `"\ud83d"`) is rejected
//! on its own instead of ending the read of everything after it. Values are not checked here;
//! each one is parsed, and its faults worded, by serde_json afterwards.

use std::ops::Range;

use crate::flat::skip_whitespace;

/// The index just after the JSON value that starts at `at` (no leading whitespace), or `None`
/// when the text ends inside it or it is not a value at all.
pub(crate) fn value_end(text: &[u8], at: usize) -> Option<usize> {
    match *text.get(at)? {
        b'"' => string_end(text, at),
        b'{' | b'[' => container_end(text, at),
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let len = text[at..]
                .iter()
                .position(|b| {
                    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b',' | b'[' | b']' | b'{' | b'}' | b':' | b'"')
                })
                .unwrap_or(text.len() - at);
            Some(at + len)
        }
        _ => None,
    }
}

/// The index after the string whose opening quote is at `at`.
fn string_end(text: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match *text.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index after the object or array whose opening bracket is at `at`.
fn container_end(text: &[u8], at: usize) -> Option<usize> {
    let mut open = Vec::new();
    let mut i = at;
    loop {
        match *text.get(i)? {
            b'"' => {
                i = string_end(text, i)?;
                continue;
            }
            b'{' => open.push(b'}'),
            b'[' => open.push(b']'),
            close @ (b'}' | b']') => {
                if open.pop() != Some(close) {
                    return None;
                }
                if open.is_empty() {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The byte ranges of the elements of the array whose `[` is at `at`, when the array is followed
/// by nothing but whitespace; `None` when the text is not shaped like one array.
pub(crate) fn array_elements(text: &[u8], at: usize) -> Option<Vec<Range<usize>>> {
    debug_assert_eq!(text.get(at), Some(&b'['));
    let mut elements = Vec::new();
    let mut i = skip_whitespace(text, at + 1);
    if text.get(i) == Some(&b']') {
        return (skip_whitespace(text, i + 1) == text.len()).then_some(elements);
    }
    loop {
        let end = value_end(text, i)?;
        elements.push(i..end);
        i = skip_whitespace(text, end);
        match *text.get(i)? {
            b',' => i = skip_whitespace(text, i + 1),
            b']' => return (skip_whitespace(text, i + 1) == text.len()).then_some(elements),
            _ => return None,
        }
    }
}

/// The byte ranges of the values that follow one another in `text`, separated by whitespace
/// only (one value, or several: NDJSON or concatenated JSON); `None` when the text is not
/// shaped like that.
pub(crate) fn top_level_values(text: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut values = Vec::new();
    let mut i = skip_whitespace(text, 0);
    while i < text.len() {
        let end = value_end(text, i)?;
        values.push(i..end);
        i = skip_whitespace(text, end);
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn array_elements_are_found_whatever_they_hold() {
        let text = r#" [ {"a": [1, {"b": "]"}]}, 1e400 , "\ud83d", "x\"]" , null,[[]] ] "#;
        let start = text.find('[').unwrap();
        let elements = array_elements(text.as_bytes(), start).unwrap();
        assert_eq!(
            texts(text, &elements),
            [r#"{"a": [1, {"b": "]"}]}"#, "1e400", r#""\ud83d""#, r#""x\"]""#, "null", "[[]]"]
        );
        assert_eq!(array_elements(b"[]", 0).unwrap(), []);
        assert_eq!(array_elements(b"[ ]\n", 0).unwrap(), []);
    }

    #[test]
    fn text_not_shaped_like_one_array_is_refused() {
        for text in ["[1,", "[1 2]", "[1,]", "[{]", "[1] x", "[\"a]", "[1}", "[,1]"] {
            assert_eq!(array_elements(text.as_bytes(), 0), None, "{text}");
        }
    }

    #[test]
    fn top_level_values_are_split() {
        let text = "{\"a\":1}\n{\"a\":1e400}\r\n\"x\" [1] 7\n";
        let values = top_level_values(text.as_bytes()).unwrap();
        assert_eq!(texts(text, &values), ["{\"a\":1}", "{\"a\":1e400}", "\"x\"", "[1]", "7"]);
        assert_eq!(top_level_values(b"  ").unwrap(), []);
        assert_eq!(top_level_values(b"{\"a\":1"), None);
        assert_eq!(top_level_values(b"1,2"), None);
        assert_eq!(top_level_values(b"{} ;"), None);
    }
}
