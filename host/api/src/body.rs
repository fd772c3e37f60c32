//! What the API knows of a request body before and after the plugin reads it: the checks made
//! before (not empty, UTF-8, well-formed JSON that is not too deep), how many records the body
//! holds in the shapes every standard reader agrees on, and the accounting that makes sure every
//! one of those records is either accepted or named in `rejected`.

use serde::de::IgnoredAny;

use crate::charset::names_its_own_charset;
use crate::error::ApiError;
use crate::limits::json_depth;

/// How deep a JSON string may hold another JSON document (the SDK's readers decode as deep).
const MAX_ENCODING_DEPTH: u8 = 2;

/// Whether a request's body said how long it is (and so could be read whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimited {
    /// By a Content-Length or a chunked Transfer-Encoding.
    Yes,
    /// By neither: over HTTP/1.0 such a body cannot be read.
    No,
}

/// The error for a body with no records in it: nothing, or only whitespace.
pub fn empty_body(delimited: Delimited) -> ApiError {
    ApiError::BadRequest(match delimited {
        Delimited::Yes => "request body is empty".into(),
        Delimited::No => "request body is empty, and the request has no Content-Length: an HTTP/1.0 request's \
                          body is read only with one"
            .into(),
    })
}

/// Whether `essence` is one of the names of newline-delimited JSON.
fn is_ndjson(essence: &str) -> bool {
    matches!(essence, "application/x-ndjson" | "application/ndjson")
}

/// Checks what can be checked before the plugin sees the body (not empty, UTF-8, for JSON
/// well-formed and not nested too deep, for CSV and TSV every quoted field closed) and answers how many records it holds
/// ([`records_sent`]).
pub fn check_body(bytes: &[u8], essence: &str, max_depth: usize) -> Result<Option<usize>, ApiError> {
    if strip_bom(bytes).iter().all(u8::is_ascii_whitespace) {
        return Err(empty_body(Delimited::Yes));
    }
    if !names_its_own_charset(essence)
        && let Err(error) = std::str::from_utf8(bytes)
    {
        return Err(ApiError::BadRequest(format!(
            "request body is not valid UTF-8 (at byte {}); a body in another character set names it in its \
             Content-Type (`; charset=windows-1252`)",
            error.valid_up_to()
        )));
    }
    if essence.contains("json") {
        let depth = json_depth(bytes, max_depth);
        if depth > max_depth {
            return Err(ApiError::BadRequest(format!("JSON is nested deeper than the limit of {max_depth} levels")));
        }
    }
    if essence == "application/json" {
        let body = strip_bom(bytes);
        // The usual body, an array, is checked and counted in one pass.
        if first_byte(body) == Some(b'[')
            && let Ok(elements) = serde_json::from_slice::<Vec<IgnoredAny>>(body)
        {
            return Ok(Some(elements.len()));
        }
        // Anything else is checked and counted in one pass too; only the seed's double encoding
        // (one JSON string) is read again, to count what it holds.
        let mut values = 0;
        for value in json_values(body) {
            value.map_err(|error| ApiError::BadRequest(format!("malformed JSON: {error}{}", found(body, &error))))?;
            values += 1;
        }
        return Ok(Some(match (values, first_byte(body)) {
            (1, Some(b'"')) => json_records(body, 0),
            (values, _) => values.max(1),
        }));
    }
    let body = strip_bom(bytes);
    if is_ndjson(essence) {
        // A pretty-printed document would be read a line at a time, each line a broken record.
        let first_line = body.split(|&b| b == b'\n').map(<[u8]>::trim_ascii).find(|line| !line.is_empty());
        if matches!(first_line, Some(b"[" | b"{")) {
            return Err(ApiError::BadRequest(
                "the body is one JSON document written over several lines, not NDJSON (one record per line): send \
                 it as application/json"
                    .into(),
            ));
        }
    }
    if let Some(delimiter) = delimiter_of(essence, body) {
        // The csv readers would take the rest of the body as that one field: its rows would
        // vanish without a rejection.
        if let Some(line) = unclosed_quote_line(body, delimiter) {
            return Err(ApiError::BadRequest(format!(
                "malformed CSV: the quoted field that starts on line {line} is never closed; nothing was stored"
            )));
        }
        return Ok(Some(delimited_records(body, delimiter)));
    }
    Ok(records_sent(essence, bytes))
}

/// The field delimiter of a body of content type `essence` read as CSV or TSV (as
/// [`records_sent`] reads it), or `None` when it is not read as delimited text.
fn delimiter_of(essence: &str, body: &[u8]) -> Option<u8> {
    let delimiter = match essence {
        "text/csv" => b',',
        "text/tab-separated-values" => b'\t',
        "text/plain" if !sluice_runtime::plain_text_is_json(body) => {
            let header = body.split(|&b| b == b'\n').next().unwrap_or_default();
            if header.contains(&b'\t') { b'\t' } else { b',' }
        }
        _ => return None,
    };
    Some(excel_separator_line(body).map_or(delimiter, |(_, delimiter)| delimiter))
}

/// The line (from 1) on which a quoted field starts that is never closed, if one does
/// (`sluice_runtime::quote_faults`: the csv crate's quoting rules).
fn unclosed_quote_line(body: &[u8], delimiter: u8) -> Option<usize> {
    memchr::memchr(b'"', body)?;
    let open = sluice_runtime::quote_faults(body, delimiter).unclosed?;
    Some(memchr::memchr_iter(b'\n', &body[..open]).count() + 1)
}

/// The number of records a body of content type `essence` holds, as every reader of the
/// standard shapes counts them (docs/design.md's record shapes): one per element of a top-level JSON
/// array, per document when several follow one another, per non-blank NDJSON line, per CSV or
/// TSV row after the header; a JSON string holding a document counts what it holds. `None` for
/// content types only the plugin understands.
///
/// Values are not parsed here, only delimited, so a value a reader refuses still counts as the
/// record it belongs to. A plugin may find more records than this (a wrapper object, say); it
/// may not find fewer.
pub fn records_sent(essence: &str, body: &[u8]) -> Option<usize> {
    let body = strip_bom(body);
    match essence {
        "application/json" => Some(json_records(body, 0)),
        essence if is_ndjson(essence) => Some(ndjson_records(body)),
        "text/plain" if sluice_runtime::plain_text_is_json(body) => Some(json_records(body, 0)),
        _ => delimiter_of(essence, body).map(|delimiter| delimited_records(body, delimiter)),
    }
}

/// The first byte of `body` that is not whitespace.
fn first_byte(body: &[u8]) -> Option<u8> {
    body.iter().find(|b| !b.is_ascii_whitespace()).copied()
}

/// The records of a JSON body: see [`records_sent`].
fn json_records(body: &[u8], depth: u8) -> usize {
    match first_byte(body) {
        Some(b'[') => {
            if let Ok(elements) = serde_json::from_slice::<Vec<IgnoredAny>>(body) {
                return elements.len();
            }
        }
        Some(b'"') if depth < MAX_ENCODING_DEPTH => {
            if let Ok(inner) = serde_json::from_slice::<String>(body) {
                return json_records(inner.as_bytes(), depth + 1);
            }
        }
        _ => {}
    }
    // Several documents one after another (NDJSON sent as JSON) are a record each; anything
    // else, malformed JSON included (which only a text/plain body brings this far), is one.
    let mut values = 0;
    for value in json_values(body) {
        if value.is_err() {
            return 1;
        }
        values += 1;
    }
    values.max(1)
}

/// The JSON documents in `body`, read without checking numbers' range or escapes' meaning.
/// What the reader found where `error` stopped it, for the message: a word (`, found `NaN``,
/// with what to send instead for the literals other languages write) or a byte that is not
/// printable (`, found byte 0x00`); nothing at the end of the body.
fn found(body: &[u8], error: &serde_json::Error) -> String {
    // serde_json counts lines from 1 and columns in bytes from 1.
    let line_start: usize =
        body.split(|&b| b == b'\n').take(error.line().saturating_sub(1)).map(|line| line.len() + 1).sum();
    let at = line_start + error.column().saturating_sub(1);
    let message = error.to_string();
    // Where serde_json names the byte itself, its position may be the byte before.
    if message.starts_with("control character") || error.line() == 0 {
        return String::new();
    }
    let Some(rest) = body.get(at..).filter(|rest| !rest.is_empty()) else { return String::new() };
    let before = &body[..at];
    let word_length = rest.iter().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')).count();
    let word = std::str::from_utf8(&rest[..word_length.min(20)]).unwrap_or_default();
    let sign =
        if before.last() == Some(&b'-') && word.starts_with(|c: char| c.is_ascii_alphabetic()) { "-" } else { "" };
    match word {
        "NaN" | "Infinity" | "+Infinity" | "inf" | "nan" => format!(
            ", found `{sign}{word}`: it is not a JSON number (Python's json.dumps writes it unless allow_nan=False); \
             send null for a value that is missing"
        ),
        "None" | "True" | "False" | "undefined" | "NULL" | "Null" => {
            format!(", found `{word}`: JSON writes null, true and false in lowercase")
        }
        "" if matches!(rest[0], b'}' | b']') && !message.starts_with("trailing comma") => {
            match before.iter().rev().find(|b| !b.is_ascii_whitespace()) {
                Some(b',') => format!(", found `{}` after a comma: JSON allows no trailing comma", rest[0] as char),
                _ => String::new(),
            }
        }
        "" if rest[0].is_ascii_graphic() || rest[0] == b' ' => String::new(),
        "" if rest[0].is_ascii() => format!(", found byte 0x{:02x}", rest[0]),
        "" => match String::from_utf8_lossy(&rest[..rest.len().min(4)]).chars().next() {
            Some(quote @ ('\u{201c}' | '\u{201d}' | '\u{2018}' | '\u{2019}')) => format!(
                ", found `{quote}`: a typographic quote (as word processors write); JSON quotes strings with `\"`"
            ),
            Some(other) if other != char::REPLACEMENT_CHARACTER => {
                format!(", found `{other}` (U+{:04X})", other as u32)
            }
            _ => format!(", found byte 0x{:02x}", rest[0]),
        },
        _ => String::new(),
    }
}

fn json_values(body: &[u8]) -> impl Iterator<Item = Result<IgnoredAny, serde_json::Error>> + '_ {
    serde_json::Deserializer::from_slice(body).into_iter::<IgnoredAny>()
}

/// The non-blank lines of an NDJSON body.
fn ndjson_records(body: &[u8]) -> usize {
    body.split(|&b| b == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace)).count()
}

/// The rows after the header of a CSV or TSV body (a first line `sep=X`, Excel's, sets the
/// delimiter and is not a row).
fn delimited_records(body: &[u8], delimiter: u8) -> usize {
    let (body, delimiter) = excel_separator_line(body).unwrap_or((body, delimiter));
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(true).from_reader(body);
    let mut row = csv::ByteRecord::new();
    let mut rows = 0;
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(false) => return rows,
            Ok(true) => rows += 1,
            Err(error) if matches!(error.kind(), csv::ErrorKind::Io(_)) => return rows,
            Err(_) => rows += 1,
        }
    }
}

/// A body whose first line is Excel's `sep=X`: the rest of the body and the delimiter `X`.
fn excel_separator_line(body: &[u8]) -> Option<(&[u8], u8)> {
    let line_end = body.iter().position(|&b| b == b'\n')?;
    let line = body[..line_end].strip_suffix(b"\r").unwrap_or(&body[..line_end]);
    match line {
        [s, e, p, b'=', delimiter] if [*s, *e, *p].eq_ignore_ascii_case(b"sep") => {
            Some((&body[line_end + 1..], *delimiter))
        }
        _ => None,
    }
}

fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// The records of the body the plugin gave no outcome for: neither accepted (`accepted` holds
/// the index of each accepted record) nor in `rejected`. Counted up to the number of records
/// sent (when the API can count them) and up to the highest index the plugin named, so a
/// plugin that stops early, skips one, or drops everything cannot make the API answer for
/// records it lost.
pub fn unaccounted(sent: Option<usize>, accepted: &[u32], rejected: &[u32]) -> Vec<u32> {
    let outcomes = accepted.len() + rejected.len();
    let highest = accepted.iter().chain(rejected).max().map_or(0, |&i| i as usize + 1);
    // A plugin may find more records than the API counts; the gaps below its highest index are
    // still records it lost, but an absurd index cannot make this allocate without bound.
    let known = sent.unwrap_or(0);
    let count = known.max(highest.min(known.max(outcomes) * 2 + 16));
    let mut seen = vec![false; count];
    for index in accepted.iter().chain(rejected) {
        if let Some(seen) = seen.get_mut(*index as usize) {
            *seen = true;
        }
    }
    seen.iter().enumerate().filter(|(_, seen)| !**seen).map(|(index, _)| index as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(essence: &str, body: &str) -> Option<usize> {
        records_sent(essence, body.as_bytes())
    }

    #[test]
    fn a_pretty_printed_document_sent_as_ndjson_is_refused_saying_to_send_json() {
        let pretty = "\n[\n  {\n    \"PatientID\": \"p1\"\n  }\n]\n";
        for body in [pretty, "{\n \"PatientID\": \"p1\"\n}\n"] {
            match check_body(body.as_bytes(), "application/x-ndjson", 64) {
                Err(ApiError::BadRequest(message)) => assert_eq!(
                    message,
                    "the body is one JSON document written over several lines, not NDJSON (one record per line): \
                     send it as application/json"
                ),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(check_body(b"{\"a\": 1}\n{\"a\": 2}\n", "application/x-ndjson", 64).unwrap(), Some(2));
        assert_eq!(check_body(b"[{\"a\": 1}]\n", "application/ndjson", 64).unwrap(), Some(1), "one line: a record");
    }

    #[test]
    fn malformed_json_names_what_was_found_and_what_to_send_instead() {
        let refused = |body: &str| match check_body(body.as_bytes(), "application/json", 64) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused("[{\"a\": 1}, {\"a\": NaN}]"),
            "malformed JSON: expected value at line 1 column 18, found `NaN`: it is not a JSON number (Python's \
             json.dumps writes it unless allow_nan=False); send null for a value that is missing"
        );
        assert_eq!(
            refused("{\"a\": 1}\n{\"a\": -Infinity}"),
            "malformed JSON: invalid number at line 2 column 8, found `-Infinity`: it is not a JSON number (Python's \
             json.dumps writes it unless allow_nan=False); send null for a value that is missing"
        );
        assert_eq!(
            refused("{\"a\": None}"),
            "malformed JSON: expected value at line 1 column 7, found `None`: JSON writes null, true and false in \
             lowercase"
        );
        assert_eq!(refused("[{\"a\": 1}]\u{0}"), "malformed JSON: expected value at line 1 column 11, found byte 0x00");
        assert_eq!(
            refused("[{\"a\": 1}]\u{1a}"),
            "malformed JSON: expected value at line 1 column 11, found byte 0x1a"
        );
        assert_eq!(
            refused("{\u{201c}a\u{201d}: 1}"),
            "malformed JSON: key must be a string at line 1 column 2, found `\u{201c}`: a typographic quote (as word \
             processors write); JSON quotes strings with `\"`"
        );
        assert_eq!(
            refused("{\"a\": 1,}"),
            "malformed JSON: key must be a string at line 1 column 9, found `}` after a comma: JSON allows no trailing \
             comma"
        );
        assert_eq!(
            refused("[{\"a\": 1},]"),
            "malformed JSON: expected value at line 1 column 11, found `]` after a comma: JSON allows no trailing comma"
        );
        assert_eq!(refused("{\"a\": abc}"), "malformed JSON: expected value at line 1 column 7");
        assert_eq!(
            refused("[\r\n {\"a\": 1},\r\n]"),
            "malformed JSON: expected value at line 3 column 1, found `]` after a comma: JSON allows no trailing comma",
            "the comma on the line before"
        );
        assert_eq!(
            refused("{\"n\": \"Zo\u{eb}\t\"}"),
            "malformed JSON: control character (\\u0000-\\u001F) found while parsing a string at line 1 column 11",
            "serde_json names the byte itself"
        );
        assert_eq!(refused("{\"a\": 1"), "malformed JSON: EOF while parsing an object at line 1 column 7");
    }

    #[test]
    fn a_quoted_field_that_is_never_closed_is_refused_with_its_line() {
        let refused = |essence: &str, body: &str| match check_body(body.as_bytes(), essence, 64) {
            Err(ApiError::BadRequest(message)) => Some(message),
            Ok(_) => None,
            Err(other) => panic!("{other:?}"),
        };
        let message = |line: usize| {
            Some(format!(
                "malformed CSV: the quoted field that starts on line {line} is never closed; nothing was stored"
            ))
        };
        let csv = "text/csv";
        assert_eq!(refused(csv, "id,value,unit\nQX1,5.1,\"mmol/L\nQX2,140,mmol/L\nQX3,4.2,mmol/L\n"), message(2));
        assert_eq!(refused(csv, "\"id\",value\r\n\"a\"\"b,1\r\n"), message(2));
        assert_eq!(refused("text/tab-separated-values", "id\tv\n1\t\"x\n"), message(2));
        assert_eq!(refused("text/plain", "id;v\n\"1;2\n"), message(2), "a text/plain table");
        assert_eq!(refused(csv, "sep=;\nid;v\n1;\"open\n"), message(3), "Excel's separator line");
        assert_eq!(refused(csv, "\u{feff}\"id,v\n1,2\n"), message(1));
        // Closed quotes, escaped quotes, quoted line breaks, and quotes inside unquoted fields.
        for fine in [
            "id,v\n1,\"a, \"\"b\"\"\nc\"\n2,x\n",
            "id,v\n1,5\" pipe\n2,\"\"\n",
            "id,v\n1,\"a\"b\"\n",
            "id,v\n1,\"\"\"\"\n",
            "id\tv\n1\ta,\"b\n",
        ] {
            let essence = if fine.contains('\t') { "text/tab-separated-values" } else { csv };
            assert_eq!(refused(essence, fine), None, "{fine:?}");
        }
        // JSON and NDJSON are not read as CSV.
        assert_eq!(refused("application/x-ndjson", "{\"a\":\"\\\"\"}\n"), None);
    }

    #[test]
    fn json_bodies_count_their_records() {
        let json = "application/json";
        assert_eq!(count(json, r#"{"a": 1}"#), Some(1));
        assert_eq!(count(json, r#"[{"a": 1e400}, {"a": "\ud83d"}, 5, [], "x"]"#), Some(5));
        assert_eq!(count(json, "[]"), Some(0));
        assert_eq!(count(json, "\u{feff} [ ] "), Some(0));
        assert_eq!(count(json, "{\"a\":1}\n{\"a\":2}\n[1,2]\n"), Some(3));
        assert_eq!(count(json, r#""[{\"a\":1},{\"a\":2}]""#), Some(2));
        assert_eq!(count(json, r#""\"[{},{},{}]\"""#), Some(3));
        assert_eq!(count(json, r#""\"\\\"[{},{},{}]\\\"\"""#), Some(1), "a third encoding is one record");
        assert_eq!(count(json, r#""not json""#), Some(1));
        assert_eq!(count(json, r#""\ud83d""#), Some(1));
        assert_eq!(count("text/plain", " [1, 2]"), Some(2));
    }

    #[test]
    fn line_and_delimited_bodies_count_their_records() {
        assert_eq!(count("application/x-ndjson", "{}\r\n\n  \n{\"a\": 1e400}\n{"), Some(3));
        assert_eq!(count("text/csv", "a,b\r\n1,2\r\n3\r\n\r\n\"x\ny\",4\n"), Some(3));
        assert_eq!(count("text/csv", "a,b\n"), Some(0));
        assert_eq!(count("text/csv", "sep=;\na;b\n1;2\n3;4\n"), Some(2));
        assert_eq!(count("text/tab-separated-values", "a\tb\n1\t2\n"), Some(1));
        assert_eq!(count("text/plain", "a\tb\n1\t2\n3\t4\n"), Some(2));
        assert_eq!(count("application/hl7-v2", "MSH|..."), None);
    }

    #[test]
    fn only_formats_that_name_their_charset_may_hold_bytes_that_are_not_utf8() {
        let latin1 = b"MSH|^~\\&|||||||||||||||||8859/1\rPID|1||P1||M\xFCller\r";
        assert!(check_body(latin1, "application/hl7-v2", 64).is_ok());
        match check_body(latin1, "text/plain", 64) {
            Err(ApiError::BadRequest(message)) => assert!(
                message.starts_with("request body is not valid UTF-8 (at byte 44); a body in another"),
                "{message}"
            ),
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn records_without_an_outcome_are_found() {
        assert_eq!(unaccounted(Some(5), &[0, 1, 3], &[4]), [2]);
        assert_eq!(unaccounted(Some(100), &(0..10).collect::<Vec<_>>(), &[10]), (11..100).collect::<Vec<_>>());
        assert_eq!(unaccounted(Some(3), &[], &[]), [0, 1, 2]);
        assert_eq!(unaccounted(Some(2), &[0, 1, 2, 3], &[]), [] as [u32; 0], "more records than counted is fine");
        assert_eq!(unaccounted(None, &[0, 2], &[4]), [1, 3]);
        let absurd = unaccounted(None, &[0, u32::MAX], &[]);
        assert!(absurd.len() < 32 && absurd[0] == 1, "an absurd index allocates next to nothing: {absurd:?}");
    }
}
