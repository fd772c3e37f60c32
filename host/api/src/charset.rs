//! Request bodies in a character set other than UTF-8: a content type's `charset` parameter
//! (`text/csv; charset=windows-1252`) is honoured by decoding the body to UTF-8 here, before
//! anything reads it, so that plugins, the log and the warehouse only ever hold UTF-8. Labels
//! are read as browsers read them (the WHATWG Encoding Standard, through `encoding_rs`: `latin1`
//! and `iso-8859-1` are windows-1252, `utf-16` is UTF-16LE; a byte order mark wins over the
//! label, and a UTF-16 one names the set of a body that names none). A label sluice does not
//! know is a 415; bytes that are not valid in the named set are a 400 that names the byte. HL7 v2 bodies
//! name their character set per message (MSH-18), which the plugin reads, so they pass as sent.

use axum::body::Bytes;
use encoding_rs::{DecoderResult, Encoding, REPLACEMENT, UTF_8};

use crate::error::ApiError;

/// `bytes` decoded to UTF-8 from the character set `content_type` names, or as they are when it
/// names none, names UTF-8, or when bodies of `essence` name their own ([`names_its_own_charset`]).
/// A body that grows past `limit` bytes in UTF-8 is a 413.
pub(crate) fn to_utf8(bytes: Bytes, content_type: &str, essence: &str, limit: usize) -> Result<Bytes, ApiError> {
    if names_its_own_charset(essence) {
        return Ok(bytes);
    }
    let labelled = match sluice_runtime::parameter(content_type, "charset") {
        Some(label) => match Encoding::for_label(label.trim().as_bytes()) {
            Some(encoding) if encoding != REPLACEMENT => Some(encoding),
            _ => return Err(ApiError::UnsupportedCharset { given: label }),
        },
        None => None,
    };
    // A byte order mark wins over the label, as the Encoding Standard decodes (Excel's "CSV
    // UTF-8" sent by a client that labels every body windows-1252), and names the set of a body
    // that names none (Windows' "Unicode" files: Notepad, PowerShell's `Out-File`).
    let bom = Encoding::for_bom(&bytes).map(|(bom, _)| bom);
    let (encoding, named_by) = match (bom, labelled) {
        (Some(bom), _) => (bom, "its byte order mark"),
        (None, Some(encoding)) => (encoding, "its Content-Type"),
        (None, None) => {
            if let Some(order) = utf16_without_bom(&bytes) {
                return Err(ApiError::BadRequest(format!(
                    "request body looks like UTF-16 (every other byte is zero) and names no character set: name it \
                     in its Content-Type (`; charset={order}`) or send UTF-8; nothing was stored"
                )));
            }
            return Ok(bytes);
        }
    };
    // UTF-8 passes as sent, but for a labelled body's mark, which decoding removes (an unlabelled
    // one stays for the reader, which ignores it).
    if (encoding == UTF_8 && (bom.is_none() || labelled.is_none()))
        || (encoding.is_ascii_compatible() && bytes.is_ascii())
    {
        return Ok(bytes);
    }
    let mut decoder = encoding.new_decoder();
    let room =
        decoder.max_utf8_buffer_length_without_replacement(bytes.len()).ok_or(ApiError::BodyTooLarge { limit })?;
    let mut text = String::with_capacity(room);
    let (result, read) = decoder.decode_to_string_without_replacement(&bytes, &mut text, true);
    match result {
        DecoderResult::InputEmpty => {}
        DecoderResult::Malformed(bad, after) => {
            let at = read - after as usize - bad as usize;
            return Err(ApiError::BadRequest(format!(
                "request body is not valid {} (at byte {at}), the character set {named_by} names; nothing was stored",
                encoding.name()
            )));
        }
        DecoderResult::OutputFull => return Err(ApiError::Internal("a charset decoder ran out of room".into())),
    }
    if text.len() > limit {
        return Err(ApiError::BodyTooLarge { limit });
    }
    Ok(Bytes::from(text))
}

/// `utf-16le` or `utf-16be` when `bytes` start as text in UTF-16 without a byte order mark
/// does: two ASCII characters, each with a zero byte (JSON and tables start with ASCII, which
/// UTF-8 never writes with zero bytes).
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 && a.is_ascii() && b.is_ascii() => Some("utf-16le"),
        [0, a, 0, b, ..] if *a != 0 && *b != 0 && a.is_ascii() && b.is_ascii() => Some("utf-16be"),
        _ => None,
    }
}

/// Whether [`to_utf8`] may decode `bytes` (rather than pass them as sent): `content_type` names
/// a character set, or the body starts with a UTF-16 byte order mark.
pub(crate) fn decodes(content_type: &str, bytes: &[u8]) -> bool {
    sluice_runtime::parameter(content_type, "charset").is_some()
        || Encoding::for_bom(bytes).is_some_and(|(encoding, _)| encoding != UTF_8)
}

/// Whether bodies of content type `essence` name their character set inside (HL7 v2's MSH-18,
/// per message), so that the plugin, not the API, decides what bytes are valid.
pub(crate) fn names_its_own_charset(essence: &str) -> bool {
    matches!(essence, "application/hl7-v2" | "x-application/hl7-v2+er7")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(body: &[u8], content_type: &str) -> Result<Vec<u8>, ApiError> {
        let essence = sluice_runtime::essence(content_type);
        to_utf8(Bytes::copy_from_slice(body), content_type, &essence, 1 << 20).map(|bytes| bytes.to_vec())
    }

    #[test]
    fn a_named_charset_is_decoded_to_utf8() {
        // "Müller" in Latin-1: the ü is 0xFC, which alone is not UTF-8.
        let latin1 = b"name\r\nM\xfcller\r\n";
        assert_eq!(decoded(latin1, "text/csv; charset=ISO-8859-1").unwrap(), "name\r\nMüller\r\n".as_bytes());
        assert_eq!(decoded(latin1, "text/csv; charset=\"latin1\"").unwrap(), "name\r\nMüller\r\n".as_bytes());
        // windows-1252's 0x80 is the euro sign.
        assert_eq!(decoded(b"\x80 12", "text/plain; charset=windows-1252").unwrap(), "€ 12".as_bytes());
        let utf16: Vec<u8> = "{\"a\":\"é\"}".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(decoded(&utf16, "application/json; charset=utf-16le").unwrap(), "{\"a\":\"é\"}".as_bytes());
        // Bytes that happen to be valid UTF-8 are still read in the charset named: Latin-1's
        // "Ã©" is not UTF-8's "é".
        assert_eq!(decoded("é".as_bytes(), "text/csv; charset=iso-8859-1").unwrap(), "Ã©".as_bytes());
        // A byte order mark says more than the label: UTF-8 here, and it is removed.
        let excel = "\u{feff}PatientGender,PatientID\nFemale,Müller\n";
        assert_eq!(
            decoded(excel.as_bytes(), "text/csv; charset=windows-1252").unwrap(),
            "PatientGender,PatientID\nFemale,Müller\n".as_bytes()
        );
        let mut utf16be = vec![0xfe, 0xff];
        utf16be.extend("a,b".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decoded(&utf16be, "text/csv; charset=utf-16le").unwrap(), b"a,b");
    }

    #[test]
    fn an_unnamed_utf16_body_is_decoded_by_its_byte_order_mark_and_refused_without_one() {
        let text = "{\"PatientID\":\"Müller\"}";
        for (mark, units) in [
            ([0xff, 0xfe], text.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()),
            ([0xfe, 0xff], text.encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<u8>>()),
        ] {
            let body: Vec<u8> = mark.iter().copied().chain(units.iter().copied()).collect();
            assert_eq!(decoded(&body, "application/json").unwrap(), text.as_bytes());
            assert_eq!(decoded(&body, "text/plain").unwrap(), text.as_bytes());
            let order = if mark[0] == 0xff { "utf-16le" } else { "utf-16be" };
            match decoded(&units, "application/json") {
                Err(ApiError::BadRequest(message)) => assert_eq!(
                    message,
                    format!(
                        "request body looks like UTF-16 (every other byte is zero) and names no character set: \
                         name it in its Content-Type (`; charset={order}`) or send UTF-8; nothing was stored"
                    )
                ),
                other => panic!("{other:?}"),
            }
            assert_eq!(decoded(&units, &format!("application/json; charset={order}")).unwrap(), text.as_bytes());
        }
        // A mark wins over a label, in errors too; a UTF-8 label does not keep UTF-16 from being read.
        match decoded(b"\xef\xbb\xbfM\xfcller", "text/csv; charset=windows-1252") {
            Err(ApiError::BadRequest(message)) => assert_eq!(
                message,
                "request body is not valid UTF-8 (at byte 4), the character set its byte order mark names; nothing \
                 was stored"
            ),
            other => panic!("{other:?}"),
        }
        let marked: Vec<u8> = [0xff, 0xfe].into_iter().chain("a,b".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decoded(&marked, "text/csv; charset=utf-8").unwrap(), b"a,b");
        // A lone surrogate after the mark: the error says who named the set.
        match decoded(&[0xff, 0xfe, b'{', 0, 0x00, 0xd8, b'}', 0], "application/json") {
            Err(ApiError::BadRequest(message)) => assert_eq!(
                message,
                "request body is not valid UTF-16LE (at byte 4), the character set its byte order mark names; \
                 nothing was stored"
            ),
            other => panic!("{other:?}"),
        }
        // A UTF-8 mark stays for the reader, which ignores it; short bodies are not taken for UTF-16.
        assert_eq!(decoded("\u{feff}{}".as_bytes(), "application/json").unwrap(), "\u{feff}{}".as_bytes());
        assert_eq!(decoded(b"a\0", "text/csv").unwrap(), b"a\0");
    }

    #[test]
    fn utf8_ascii_unnamed_and_hl7_bodies_pass_as_sent() {
        let body = b"M\xfcller";
        assert_eq!(decoded(body, "text/csv").unwrap(), body, "checked as UTF-8 later, not here");
        assert_eq!(decoded(body, "text/csv; charset=utf-8").unwrap(), body);
        assert_eq!(decoded(b"plain", "text/csv; charset=iso-8859-1").unwrap(), b"plain");
        assert_eq!(decoded(body, "application/hl7-v2; charset=utf-16").unwrap(), body, "MSH-18 decides");
    }

    #[test]
    fn unknown_charsets_and_invalid_bytes_are_refused_by_name() {
        match decoded(b"a", "text/csv; charset=klingon") {
            Err(error @ ApiError::UnsupportedCharset { .. }) => assert_eq!(
                error.to_string(),
                "unsupported charset `klingon`; send UTF-8, or name a character set of the WHATWG Encoding \
                 Standard (windows-1252, iso-8859-15, shift_jis, utf-16le, ...)"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(decoded(b"a", "text/csv; charset=iso-2022-kr"), Err(ApiError::UnsupportedCharset { .. })));
        // 0x82 0x20 is no Shift_JIS character.
        match decoded(b"ok\x82 ", "text/csv; charset=shift_jis") {
            Err(ApiError::BadRequest(message)) => assert_eq!(
                message,
                "request body is not valid Shift_JIS (at byte 2), the character set its Content-Type names; nothing \
                 was stored"
            ),
            other => panic!("{other:?}"),
        }
        let limit = to_utf8(Bytes::from_static(b"\xfc\xfc\xfc"), "text/csv; charset=latin1", "text/csv", 4);
        assert!(matches!(limit, Err(ApiError::BodyTooLarge { limit: 4 })), "six bytes in UTF-8");
    }
}
