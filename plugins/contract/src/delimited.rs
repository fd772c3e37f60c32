//! CSV and TSV text as the host and the SDK's readers both see it: which shape a `text/plain`
//! body has, and where its quoting goes wrong. Quoting follows RFC 4180 as the csv readers apply
//! it: a quote opens a field only at the field's start, `""` inside a quoted field is a quote,
//! and a quote anywhere else is an ordinary character.

/// Whether a `text/plain` body is JSON (an object, an array, or a JSON string: the seed's
/// double encoding) rather than a table with a header row. A body that starts with a quoted
/// value followed by a delimiter (`"PatientID","Gender"`, as R's `write.csv` and Excel's
/// "quote all" write) is a table.
pub fn plain_text_is_json(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let Some(start) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return false;
    };
    match body[start] {
        b'{' | b'[' => true,
        b'"' => {
            let Some(end) = json_string_end(&body[start..]) else {
                return true;
            };
            let after = body[start + end..].iter().find(|&&b| b != b' ');
            !matches!(after, Some(b',' | b'\t' | b';' | b'|'))
        }
        _ => false,
    }
}

/// The length of the JSON string at the start of `text` (which starts with its quote), if it
/// is closed.
fn json_string_end(text: &[u8]) -> Option<usize> {
    let mut at = 1;
    while at < text.len() {
        match text[at] {
            b'\\' => at += 2,
            b'"' => return Some(at + 1),
            _ => at += 1,
        }
    }
    None
}

/// Where the quoting of delimited text goes wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuoteFaults {
    /// The byte offset of the opening quote of a quoted field that is never closed: a reader
    /// would take the rest of the text as that field.
    pub unclosed: Option<usize>,
    /// The first quoted field followed by text before its delimiter (`"Black" or African`,
    /// which a reader would turn into `Black or African`): the byte offset of its opening
    /// quote and the field's index within its row (from 0).
    pub text_after_closing_quote: Option<(usize, usize)>,
}

/// Scans `text` (rows of fields separated by `delimiter`) for quoting faults.
pub fn quote_faults(text: &[u8], delimiter: u8) -> QuoteFaults {
    let mut faults = QuoteFaults::default();
    let mut at = 0;
    // The index of the field at `at` within its row.
    let mut field = 0;
    while at < text.len() {
        if text[at] == b'"' {
            let open = at;
            at += 1;
            loop {
                let Some(found) = text[at..].iter().position(|&b| b == b'"') else {
                    faults.unclosed = Some(open);
                    return faults;
                };
                at += found + 1;
                if text.get(at) != Some(&b'"') {
                    break;
                }
                at += 1;
            }
            match text.get(at) {
                None => return faults,
                Some(&b) if b == delimiter || b == b'\n' || b == b'\r' => {}
                Some(_) => {
                    faults.text_after_closing_quote.get_or_insert((open, field));
                }
            }
        }
        // The rest of the field, quotes in it ordinary characters.
        match text[at..].iter().position(|&b| b == delimiter || b == b'\n' || b == b'\r') {
            None => return faults,
            Some(found) => {
                field = if text[at + found] == delimiter { field + 1 } else { 0 };
                at += found + 1;
            }
        }
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_tables_and_json_are_told_apart() {
        assert!(plain_text_is_json(br#"{"PatientID": "p1"}"#));
        assert!(plain_text_is_json(b"\xEF\xBB\xBF [{}]"));
        assert!(plain_text_is_json(br#""{\"PatientID\": \"p1\"}""#), "the seed's double encoding");
        assert!(plain_text_is_json(b"\"a, b\"\n"), "a JSON string holding a comma");
        assert!(!plain_text_is_json(b"\"PatientID\",\"PatientGender\"\n\"p1\",\"Male\"\n"), "R's write.csv");
        assert!(!plain_text_is_json(b"\"PatientID\"\t\"PatientGender\"\n"));
        assert!(!plain_text_is_json(b"PatientID,PatientGender\n"));
        assert!(!plain_text_is_json(b"  \n"));
    }

    #[test]
    fn unclosed_quotes_and_text_after_a_closing_quote_are_found() {
        assert_eq!(quote_faults(b"a,b\n1,\"x\"\n2,\"y\"\"z\"\n", b','), QuoteFaults::default());
        assert_eq!(quote_faults(b"a,b\n1,x\"y\n", b','), QuoteFaults::default(), "a quote inside a field is data");
        assert_eq!(quote_faults(b"a,b\n1,\"x\n2,y\n", b',').unclosed, Some(6));
        let faults = quote_faults(b"a,b,c\r\n1,\"Black\" or African,3\r\n\"x\"y,2,3\n", b',');
        assert_eq!(faults.text_after_closing_quote, Some((9, 1)));
        assert_eq!(faults.unclosed, None);
        assert_eq!(quote_faults(b"a\tb\n\"x\" y\t2\n", b'\t').text_after_closing_quote, Some((4, 0)));
        assert_eq!(quote_faults(b"a;b\n\"x\";\"y\"\n", b';'), QuoteFaults::default());
        assert_eq!(quote_faults(b"\"multi\nline\",2\n", b','), QuoteFaults::default());
    }
}
