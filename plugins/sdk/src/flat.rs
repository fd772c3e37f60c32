//! A fast reader for the usual record: a flat JSON object of scalar values, alone or in an
//! array.
//!
//! It reads exactly what the general (serde_json) reader in [`crate::records`] reads for such
//! bodies, and gives up (`None`) on anything else: a nested value, an escape in a string, a
//! number it cannot read exactly as serde_json does, malformed JSON. The caller then reads the
//! whole body with the general reader, which also words the errors; nothing read here counts.
//!
//! Strings are scanned 16 bytes a step (Wasm SIMD, SSE2 natively), a key that is exactly the
//! next declared name (the usual case: senders keep one field order) is recognized by comparing
//! its bytes with the name's JSON key (`"name":`) instead of being scanned, and the reader is a
//! few small loops with no visitor calls between them (every call and loop turn in Wasm also
//! pays an interruption check).

use std::borrow::Cow;

use crate::records::{FieldNames, Raw, field_for_key};

/// The index of the first byte at or after `at` that is not JSON whitespace.
#[inline(always)]
pub(crate) fn skip_whitespace(text: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = text.get(at) {
        at += 1;
    }
    at
}

/// Reads the object whose `{` is at `at` into `slots` (one per declared field, all
/// [`Raw::Missing`] on entry); the index after its `}`, or `None` when the fast reader does not
/// handle it.
pub(crate) fn object<'a>(text: &'a [u8], at: usize, names: &FieldNames<'_>, slots: &mut [Raw<'a>]) -> Option<usize> {
    let fields = names.names();
    debug_assert_eq!(text.get(at), Some(&b'{'));
    let mut at = skip_whitespace(text, at + 1);
    if text.get(at) == Some(&b'}') {
        return Some(at + 1);
    }
    // Senders usually keep one field order: try the field after the last match first.
    let mut expected = 0;
    // Whether a key was found out of the declared order. Until one is, the fields named are
    // strictly increasing and none can be named twice, so the usual record pays no check.
    let mut out_of_order = false;
    loop {
        if text.get(at) != Some(&b'"') {
            return None;
        }
        // Keys usually are the next declared name as JSON writes it: `"name":`, matched by its
        // bytes.
        let index = if let Some(after) = expected_key(text, at, names.keys().get(expected)) {
            at = after;
            Some(expected)
        } else {
            let (key, after_key) = string(text, at + 1)?;
            at = skip_whitespace(text, after_key);
            if text.get(at) != Some(&b':') {
                return None;
            }
            at += 1;
            let index = field_for_key(fields, expected, key);
            out_of_order |= index.is_some();
            index
        };
        at = skip_whitespace(text, at);
        let (value, after_value) = scalar(text, at)?;
        if let Some(index) = index {
            if out_of_order && !matches!(slots[index], Raw::Missing) {
                // A field named twice: the general reader decides whether that is ambiguous.
                return None;
            }
            slots[index] = value;
            expected = index + 1;
        }
        at = skip_whitespace(text, after_value);
        match text.get(at)? {
            b',' => at = skip_whitespace(text, at + 1),
            b'}' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// When the text at `at` is `key` (a declared name's `"name":`): the index after it.
#[inline(always)]
fn expected_key(text: &[u8], at: usize, key: Option<&String>) -> Option<usize> {
    let key = key?.as_bytes();
    let end = at + key.len();
    same_bytes(text.get(at..end)?, key).then_some(end)
}

/// `a == b`, without a loop for up to 32 bytes (overlapping words): in Wasm a `memcmp` call is
/// a byte loop, and this runs for every key of every record.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let w4 = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        17..=32 => {
            (w8(a, 0) ^ w8(b, 0))
                | (w8(a, 8) ^ w8(b, 8))
                | (w8(a, n - 16) ^ w8(b, n - 16))
                | (w8(a, n - 8) ^ w8(b, n - 8))
                == 0
        }
        _ => a == b,
    }
}

/// Reads the array of objects whose `[` is at `at`, appending each object's slots (one per
/// declared field) to `slots`; the index after its `]` and the number of objects, or `None`
/// when the fast reader does not handle it (`slots` then holds a partial read to discard).
pub(crate) fn array_of_objects<'a>(
    text: &'a [u8],
    at: usize,
    fields: &FieldNames<'_>,
    slots: &mut Vec<Raw<'a>>,
) -> Option<(usize, usize)> {
    debug_assert_eq!(text.get(at), Some(&b'['));
    let mut at = skip_whitespace(text, at + 1);
    if text.get(at) == Some(&b']') {
        return Some((at + 1, 0));
    }
    let mut count = 0;
    loop {
        if text.get(at) != Some(&b'{') {
            return None;
        }
        let first = slots.len();
        slots.resize(first + fields.len(), Raw::Missing);
        at = skip_whitespace(text, object(text, at, fields, &mut slots[first..])?);
        count += 1;
        match text.get(at)? {
            b',' => at = skip_whitespace(text, at + 1),
            b']' => return Some((at + 1, count)),
            _ => return None,
        }
    }
}

/// Reads the scalar value starting at `at`: the value and the index after it.
#[inline(always)]
fn scalar(text: &[u8], at: usize) -> Option<(Raw<'_>, usize)> {
    let literal = |word: &[u8], value: Raw<'static>| {
        text.get(at..at + word.len()).filter(|bytes| *bytes == word).map(|_| (value, at + word.len()))
    };
    match text.get(at)? {
        b'"' => string(text, at + 1).map(|(value, end)| (Raw::Str(Cow::Borrowed(value)), end)),
        b'-' | b'0'..=b'9' => number(text, at),
        b't' => literal(b"true", Raw::Bool(true)),
        b'f' => literal(b"false", Raw::Bool(false)),
        b'n' => literal(b"null", Raw::Null),
        _ => None,
    }
}

/// Reads the string whose contents start at `at` (just after its opening quote): the contents
/// and the index after the closing quote. `None` for a string with an escape or a control
/// character, one that is not valid UTF-8 or not closed.
#[inline(always)]
fn string(text: &[u8], at: usize) -> Option<(&str, usize)> {
    let mut end = at;
    let mut ascii = true;
    loop {
        end = next_special_byte(text, end);
        match text.get(end)? {
            b'"' => break,
            0x80.. => {
                ascii = false;
                end += 1;
            }
            // A backslash or a control character.
            _ => return None,
        }
    }
    let contents = &text[at..end];
    let contents = if ascii {
        debug_assert!(contents.is_ascii());
        // SAFETY: every byte of `contents` was checked to be below 0x80 (ASCII), which is valid
        // UTF-8; checking again would cost a second pass over every string.
        unsafe { std::str::from_utf8_unchecked(contents) }
    } else {
        std::str::from_utf8(contents).ok()?
    };
    Some((contents, end + 1))
}

/// Whether `text` can stand between a JSON string's quotes as it is: no quote, backslash or
/// control character (the bytes serde_json escapes; it leaves non-ASCII text as it is).
pub(crate) fn is_plain_json_text(text: &[u8]) -> bool {
    let mut at = 0;
    loop {
        at = next_special_byte(text, at);
        match text.get(at) {
            None => return true,
            Some(0x80..) => at += 1,
            Some(_) => return false,
        }
    }
}

/// Bytes examined per step of the string scan.
const STEP: usize = 16;

/// The index of the first byte at or after `at` that ends a plain run of string contents: a
/// quote, a backslash, a control character or a non-ASCII byte (`text.len()` when none does).
#[inline(always)]
fn next_special_byte(text: &[u8], mut at: usize) -> usize {
    while let Some(chunk) = text.get(at..at + STEP) {
        let found = special_mask(chunk.try_into().expect("STEP bytes"));
        if found != 0 {
            return at + found.trailing_zeros() as usize;
        }
        at += STEP;
    }
    if at >= text.len() {
        return text.len();
    }
    if text.len() < STEP {
        return at + text[at..].iter().position(|&b| is_special(b)).unwrap_or(text.len() - at);
    }
    // Fewer than STEP bytes left: one more step over the last STEP bytes of the text,
    // ignoring the ones before `at`.
    let last = text.len() - STEP;
    let found = special_mask(text[last..].try_into().expect("STEP bytes")) >> (at - last);
    if found != 0 { at + found.trailing_zeros() as usize } else { text.len() }
}

/// Whether `byte` ends a plain run of string contents (see [`next_special_byte`]).
fn is_special(byte: u8) -> bool {
    matches!(byte, b'"' | b'\\' | 0..0x20 | 0x80..)
}

/// Bit `i` is set where byte `i` of `chunk` [is special](is_special): Wasm SIMD (simd128).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn special_mask(chunk: &[u8; STEP]) -> u32 {
    use std::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_load, v128_or};
    // SAFETY: `chunk` is 16 readable bytes; Wasm loads need no alignment.
    let bytes = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
    let quotes = u8x16_eq(bytes, u8x16_splat(b'"'));
    let backslashes = u8x16_eq(bytes, u8x16_splat(b'\\'));
    let controls = u8x16_lt(bytes, u8x16_splat(0x20));
    // The top bit of each byte: set for non-ASCII bytes and for the matches above.
    u32::from(u8x16_bitmask(v128_or(v128_or(quotes, backslashes), v128_or(controls, bytes))))
}

/// Bit `i` is set where byte `i` of `chunk` [is special](is_special): SSE2, which every x86_64
/// has.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special_mask(chunk: &[u8; STEP]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so its intrinsics may run on any x86_64;
    // `chunk` is 16 readable bytes and `loadu` needs no alignment.
    unsafe {
        let bytes = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let quotes = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8));
        let backslashes = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8));
        // Unsigned `byte <= 0x1f` as `max(byte, 0x1f) == 0x1f`.
        let controls = _mm_cmpeq_epi8(_mm_max_epu8(bytes, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
        // The top bit of each byte: set for non-ASCII bytes and for the matches above.
        let special = _mm_or_si128(_mm_or_si128(quotes, backslashes), _mm_or_si128(controls, bytes));
        _mm_movemask_epi8(special) as u32
    }
}

/// Bit `i` is set where byte `i` of `chunk` [is special](is_special): two 64-bit words, where
/// neither SIMD above is available (a plugin built without `+simd128`).
#[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
#[inline(always)]
fn special_mask(chunk: &[u8; STEP]) -> u32 {
    let word = |half: &[u8]| u64::from_le_bytes(half.try_into().expect("8 bytes"));
    word_mask(word(&chunk[..8])) | word_mask(word(&chunk[8..])) << 8
}

/// Bit `i` is set where byte `i` of `word` (little-endian) [is special](is_special); exact for
/// every byte (no borrow crosses bytes).
#[cfg_attr(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"), allow(dead_code))]
#[inline(always)]
fn word_mask(word: u64) -> u32 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Top bit of a byte set where the byte's low seven bits are zero / below 0x20; no carry
    // leaves a byte.
    let zero = |x: u64| !((x & LOW7).wrapping_add(LOW7) | x | LOW7);
    let quotes = zero(word ^ (ONES * u64::from(b'"')));
    let backslashes = zero(word ^ (ONES * u64::from(b'\\')));
    let controls = !((word & LOW7).wrapping_add(ONES * 0x60) | word | LOW7);
    let tops = (quotes | backslashes | controls | word) & !LOW7;
    // Gather the eight top bits into the low byte.
    ((tops >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// Reads the JSON number starting at `at` as serde_json does: an integer that fits `i64` is
/// [`Raw::Int`], one with a fraction or exponent [`Raw::Float`] (correctly rounded, as
/// serde_json with `float_roundtrip`). `None` for malformed numbers, `-0`, integers of more than
/// 18 digits and floats out of range: the general reader handles those.
fn number(text: &[u8], at: usize) -> Option<(Raw<'_>, usize)> {
    let digits_from = |mut i: usize| {
        while text.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let negative = text[at] == b'-';
    let int_start = at + usize::from(negative);
    let int_end = match text.get(int_start)? {
        b'0' => int_start + 1,
        b'1'..=b'9' => digits_from(int_start + 1),
        _ => return None,
    };
    let mut end = int_end;
    if text.get(end) == Some(&b'.') {
        let fraction_end = digits_from(end + 1);
        if fraction_end == end + 1 {
            return None;
        }
        end = fraction_end;
    }
    if let Some(b'e' | b'E') = text.get(end) {
        let mut exponent = end + 1;
        if let Some(b'+' | b'-') = text.get(exponent) {
            exponent += 1;
        }
        let exponent_end = digits_from(exponent);
        if exponent_end == exponent {
            return None;
        }
        end = exponent_end;
    }
    if end == int_end {
        let digits = &text[int_start..int_end];
        if digits.len() > 18 {
            return None;
        }
        let magnitude = digits.iter().fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
        return match (negative, magnitude) {
            // serde_json reads `-0` as the float -0.0.
            (true, 0) => None,
            (true, _) => Some((Raw::Int(-magnitude), end)),
            (false, _) => Some((Raw::Int(magnitude), end)),
        };
    }
    let literal = &text[at..end];
    debug_assert!(literal.is_ascii());
    // SAFETY: the literal was just checked byte by byte against the JSON number grammar: sign,
    // digits, point, exponent letter, all ASCII.
    let value: f64 = unsafe { std::str::from_utf8_unchecked(literal) }.parse().ok()?;
    value.is_finite().then_some((Raw::Float(value), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["PatientID", "LabValue", "Flag"];

    fn names() -> FieldNames<'static> {
        FieldNames::new(FIELDS.iter().copied())
    }

    fn read_object(text: &str) -> Option<(Vec<Raw<'_>>, usize)> {
        let mut slots = vec![Raw::Missing; FIELDS.len()];
        let at = skip_whitespace(text.as_bytes(), 0);
        object(text.as_bytes(), at, &names(), &mut slots).map(|end| (slots, end))
    }

    /// The position of every special byte, by the byte-by-byte rule.
    fn expected_mask(chunk: &[u8]) -> u32 {
        chunk.iter().enumerate().filter(|(_, b)| is_special(**b)).fold(0, |mask, (i, _)| mask | 1 << i)
    }

    /// Every length through each word layout: equal slices are equal, a difference in any
    /// byte is seen, and slices of different lengths differ.
    #[test]
    fn same_bytes_is_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'A' + i).collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, base[..n].to_vec().as_slice()), "length {n}");
            assert!(!same_bytes(a, &base[..n.saturating_sub(1)]) || n == 0, "length {n}");
            for at in 0..n {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same_bytes(a, &b), "length {n}, difference at {at}");
            }
        }
    }

    #[test]
    fn the_scan_finds_the_first_quote_backslash_control_or_non_ascii_byte() {
        let cases: &[(&[u8], usize)] = &[
            (b"abcdefgh", 8),
            (b"abc\"defg", 3),
            (b"\\bcdefgh", 0),
            (b"abcdefg\x1f", 7),
            (b"ab\x00\"efgh", 2),
            (b"abcd\xc3\xa9gh", 4),
            (b"  !#[]~\x7f", 8),
            (b"0123456789abcdefghijklmnopqrstu\"", 31),
            (b"0123456789abcdefghijklmnop\"rstu", 26),
            (b"0123456789abcdefghijklmnopqrstu", 31),
        ];
        for (bytes, expected) in cases {
            assert_eq!(next_special_byte(bytes, 0), *expected, "{bytes:?}");
        }
        // Every start in a text long enough for a full step and an overlapping last one.
        let text = b"{\"PatientID\":\"6A3E-1F\",\"Race\":\"Zo\xc3\xab\",\"Tab\":\"a\tb\",\"x\":\"\\\"\"}";
        for at in 0..=text.len() {
            let expected = text[at..].iter().position(|&b| is_special(b)).map_or(text.len(), |p| at + p);
            assert_eq!(next_special_byte(text, at), expected, "from {at}");
        }
    }

    #[test]
    fn the_masks_mark_exactly_the_special_bytes() {
        // Every byte value in every position, on a plain background and among other matches.
        for background in [*b"abcdefghijklmnop", *b"a\"c\\e\x01g\xffijk\x7fmn\x1f\x20"] {
            for byte in 0..=255u8 {
                for position in 0..STEP {
                    let mut chunk = background;
                    chunk[position] = byte;
                    let expected = expected_mask(&chunk);
                    assert_eq!(special_mask(&chunk), expected, "{byte:#x} at {position} in {background:?}");
                    let word = |half: &[u8]| u64::from_le_bytes(half.try_into().unwrap());
                    let swar = word_mask(word(&chunk[..8])) | word_mask(word(&chunk[8..])) << 8;
                    assert_eq!(swar, expected, "SWAR: {byte:#x} at {position} in {background:?}");
                }
            }
        }
    }

    #[test]
    fn flat_objects_are_read_with_their_end() {
        let text = r#" { "patientid" : "p1", "LabValue":-2.5e1,"Flag":true,"x":null }  "#;
        let (slots, end) = read_object(text).unwrap();
        assert_eq!(slots, vec![Raw::Str(Cow::Borrowed("p1")), Raw::Float(-25.0), Raw::Bool(true)]);
        assert_eq!(end, text.trim_end().len(), "just after the closing brace");
        let (slots, _) = read_object(r#"{"LabValue": 12, "PatientID": "Zoë"}"#).unwrap();
        assert_eq!(slots, vec![Raw::Str(Cow::Borrowed("Zoë")), Raw::Int(12), Raw::Missing]);
        assert_eq!(read_object("{}").unwrap().0, vec![Raw::Missing; 3]);
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_reader() {
        for text in [
            r#"{"PatientID": "a\"b"}"#,
            r#"{"PatientID": {"nested": 1}}"#,
            r#"{"x": [1]}"#,
            r#"{"PatientID": "a",}"#,
            r#"{"PatientID": "a" "LabValue": 1}"#,
            r#"{"LabValue": -0}"#,
            r#"{"LabValue": 01}"#,
            r#"{"LabValue": 1.}"#,
            r#"{"LabValue": 1e}"#,
            r#"{"LabValue": 1e999}"#,
            r#"{"LabValue": 1234567890123456789}"#,
            r#"{"LabValue": +1}"#,
            r#"{"Flag": tru}"#,
            r#"{"Flag": True}"#,
            "{\"PatientID\": \"a\tb\"}",
            r#"{"PatientID": "a"#,
            r#"{"PatientID" "a"}"#,
            r#"{PatientID: "a"}"#,
        ] {
            assert_eq!(read_object(text), None, "{text}");
        }
    }

    #[test]
    fn arrays_of_objects_append_one_group_of_slots_per_object() {
        let text = br#"[{"PatientID": "a"}, {"LabValue": 7} ,{}]"#;
        let mut slots = Vec::new();
        assert_eq!(array_of_objects(text, 0, &names(), &mut slots), Some((text.len(), 3)));
        assert_eq!(slots.len(), 9);
        assert_eq!(slots[0], Raw::Str(Cow::Borrowed("a")));
        assert_eq!(slots[4], Raw::Int(7));
        assert_eq!(array_of_objects(b"[]", 0, &names(), &mut Vec::new()), Some((2, 0)));
        assert_eq!(array_of_objects(br#"[{}, "{}"]"#, 0, &names(), &mut Vec::new()), None);
        assert_eq!(array_of_objects(br#"[{}, ]"#, 0, &names(), &mut Vec::new()), None);
    }
}
