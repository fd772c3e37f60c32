//! Decoding request bodies into records of named fields, whatever shape the sender used.
//!
//! Accepted shapes (see DESIGN.md): a JSON object; a JSON string holding a JSON document (the
//! seed's double encoding); a JSON array of either; NDJSON; CSV or TSV text with a header row.
//! A UTF-8 byte order mark and CRLF line ends are accepted everywhere. Field names are matched
//! case-insensitively; fields the plugin does not declare are ignored.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::flat::{self, same_bytes};

/// How deep a JSON string may hold another JSON document (the seed encodes once).
const MAX_ENCODING_DEPTH: u8 = 2;

/// Records of up to this many declared fields are read into slots on the stack.
const STACK_FIELDS: usize = 16;

/// One field's value as the sender wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<'a> {
    /// The field is absent.
    Missing,
    /// JSON `null`.
    Null,
    /// Text (JSON string, or any CSV cell).
    Str(Cow<'a, str>),
    /// A JSON integer.
    Int(i64),
    /// A JSON number with a fraction or exponent, or out of `i64` range.
    Float(f64),
    /// A JSON boolean.
    Bool(bool),
    /// A JSON object or array where a single value belongs.
    Nested,
}

/// Why a record could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// What is wrong.
    pub reason: String,
}

/// The body layouts the decoder knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document: object, array or encoded string; NDJSON when more follow.
    Json,
    /// One JSON document per line.
    Ndjson,
    /// Comma-separated with a header row.
    Csv,
    /// Tab-separated with a header row.
    Tsv,
}

/// Content types the decoder accepts.
pub const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "text/csv",
    "text/tab-separated-values",
    "text/plain",
];

/// Strips a UTF-8 byte order mark.
fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// The format of `body` under `content_type` (`text/plain` is sniffed), or `None` when the
/// content type is not one the decoder reads.
pub fn detect(content_type: &str, body: &[u8]) -> Option<Format> {
    match content_type {
        "application/json" => Some(Format::Json),
        "application/x-ndjson" | "application/ndjson" => Some(Format::Ndjson),
        "text/csv" => Some(Format::Csv),
        "text/tab-separated-values" => Some(Format::Tsv),
        "text/plain" => {
            let body = strip_bom(body);
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            if matches!(first, Some(b'{' | b'[' | b'"')) {
                Some(Format::Json)
            } else {
                let header = body.split(|&b| b == b'\n').next().unwrap_or_default();
                Some(if header.contains(&b'\t') { Format::Tsv } else { Format::Csv })
            }
        }
        _ => None,
    }
}

/// Receives each record: its index within the payload and its field values in the order of the
/// declared names (or why it could not be read).
pub type OnRecord<'c> = dyn FnMut(u32, Result<&mut [Raw<'_>], RecordError>) + 'c;

/// The sender's field names records are read into, in the order of the slots a record gets.
/// Built once per plugin, not per body.
#[derive(Debug, Clone)]
pub struct FieldNames<'n> {
    names: Vec<&'n str>,
    /// Each name as a JSON object key, `"name":` (quoted, escaped as serde_json escapes): what
    /// canonical records write, and the bytes the fast reader recognizes a key by.
    keys: Vec<String>,
}

impl<'n> FieldNames<'n> {
    /// The names, matched case-insensitively against the sender's keys and CSV headers.
    pub fn new(names: impl IntoIterator<Item = &'n str>) -> Self {
        let names: Vec<&str> = names.into_iter().collect();
        let keys = names.iter().map(|name| json_key(name)).collect();
        Self { names, keys }
    }

    /// The names, in slot order.
    pub fn names(&self) -> &[&'n str] {
        &self.names
    }

    /// The number of names (slots per record).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Each name's `"name":`, in slot order.
    pub(crate) fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// `name` as a JSON object key: the quoted, escaped name and a colon.
fn json_key(name: &str) -> String {
    let mut key = serde_json::to_string(name).expect("a string encodes");
    key.push(':');
    key
}

/// Decodes every record in `body` and hands each to `on_record`.
///
/// `fields` are the sender's field names, matched case-insensitively.
pub fn decode(format: Format, body: &[u8], fields: &FieldNames<'_>, on_record: &mut OnRecord<'_>) {
    decode_with(format, body, fields, on_record, true);
}

/// [`decode`], with or without the fast reader for flat JSON objects (tests compare the two).
fn decode_with(format: Format, body: &[u8], fields: &FieldNames<'_>, on_record: &mut OnRecord<'_>, fast: bool) {
    let body = strip_bom(body);
    let mut decoder = Decoder { fields, on_record, next_index: 0, fast };
    match format {
        Format::Json => decoder.json_document(body),
        Format::Ndjson => decoder.json_lines(body, 0),
        Format::Csv => decoder.delimited(body, b','),
        Format::Tsv => decoder.delimited(body, b'\t'),
    }
}

struct Decoder<'f, 'c, 'o> {
    fields: &'f FieldNames<'f>,
    on_record: &'o mut OnRecord<'c>,
    next_index: u32,
    /// Whether flat objects go through [`flat`] first.
    fast: bool,
}

impl Decoder<'_, '_, '_> {
    fn emit(&mut self, record: Result<&mut [Raw<'_>], RecordError>) {
        let index = self.next_index;
        self.next_index += 1;
        (self.on_record)(index, record);
    }

    fn reject(&mut self, reason: String) {
        self.emit(Err(RecordError { reason }));
    }

    fn field_index(&self, name: &str) -> Option<usize> {
        let name = name.trim();
        self.fields.names().iter().position(|f| f.eq_ignore_ascii_case(name))
    }

    /// The usual JSON bodies, one flat object or an array of them, read by the fast reader;
    /// `false`, with nothing emitted, when the body is anything else.
    fn flat_document(&mut self, body: &[u8]) -> bool {
        if !self.fast {
            return false;
        }
        let width = self.fields.len();
        let start = flat::skip_whitespace(body, 0);
        match body.get(start) {
            Some(b'{') => self.flat_object(body, start),
            Some(b'[') => {
                let mut slots = Vec::new();
                match flat::array_of_objects(body, start, self.fields, &mut slots) {
                    Some((end, count)) if flat::skip_whitespace(body, end) == body.len() => {
                        for record in 0..count {
                            self.emit(Ok(&mut slots[record * width..(record + 1) * width]));
                        }
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// A whole body that should be one JSON document.
    fn json_document(&mut self, body: &[u8]) {
        if self.flat_document(body) {
            return;
        }
        // Validating the body as UTF-8 once spares serde_json validating every string in it;
        // invalid UTF-8 goes the slow way, which says where the fault is.
        let result = match std::str::from_utf8(body) {
            Ok(text) => self.document(&mut serde_json::Deserializer::from_str(text)),
            Err(_) => self.document(&mut serde_json::Deserializer::from_slice(body)),
        };
        match result {
            Ok(()) => {}
            Err(error) if error.is_syntax() && self.next_index == 1 && error.to_string().starts_with("trailing") => {
                // Another document follows the first: NDJSON sent as application/json.
                let first_line = body.iter().position(|&b| b == b'\n').map_or(body.len(), |p| p + 1);
                if serde_json::from_slice::<IgnoredAny>(&body[..first_line]).is_ok() {
                    self.json_lines(&body[first_line..], 1);
                } else {
                    self.reject(format!("malformed JSON: {error}"));
                }
            }
            Err(error) => self.reject(format!("malformed JSON: {error}")),
        }
    }

    /// Reads one whole JSON document (a record, an array of records or an encoded document).
    fn document<'de, R: serde_json::de::Read<'de>>(
        &mut self,
        de: &mut serde_json::Deserializer<R>,
    ) -> Result<(), serde_json::Error> {
        de.deserialize_any(DocumentVisitor { decoder: self, depth: 0 })?;
        de.end()
    }

    /// One JSON document per non-blank line; a bad line rejects only its record.
    fn json_lines(&mut self, body: &[u8], first_index: u32) {
        self.next_index = first_index;
        for line in body.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.fast_line(line) {
                continue;
            }
            let mut de = serde_json::Deserializer::from_slice(line);
            let before = self.next_index;
            let result =
                RecordSeed { fields: self.fields.names() }.deserialize(&mut de).and_then(|r| de.end().map(|()| r));
            match result {
                Ok(record) => self.record_value(record, 0),
                Err(error) => self.reject(format!("malformed JSON: {error}")),
            }
            debug_assert_eq!(self.next_index, before + 1);
        }
    }

    /// One NDJSON line holding a flat object, read by the fast reader; `false`, with nothing
    /// emitted, when the line is anything else.
    fn fast_line(&mut self, line: &[u8]) -> bool {
        let start = flat::skip_whitespace(line, 0);
        if !self.fast || line.get(start) != Some(&b'{') {
            return false;
        }
        self.flat_object(line, start)
    }

    /// The flat object whose `{` is at `start`, with only whitespace after it in `text`, read by
    /// the fast reader and emitted; `false`, with nothing emitted, when it is anything else.
    fn flat_object(&mut self, text: &[u8], start: usize) -> bool {
        let width = self.fields.len();
        // The usual handful of fields on the stack; the heap only for wide records.
        let mut stack = [const { Raw::Missing }; STACK_FIELDS];
        let mut heap = Vec::new();
        let slots: &mut [Raw<'_>] = if width <= STACK_FIELDS {
            &mut stack[..width]
        } else {
            heap.resize(width, Raw::Missing);
            &mut heap
        };
        match flat::object(text, start, self.fields, slots) {
            Some(end) if flat::skip_whitespace(text, end) == text.len() => {
                self.emit(Ok(slots));
                true
            }
            _ => false,
        }
    }

    /// Handles one value that should be a record.
    fn record_value(&mut self, value: RecordValue<'_>, depth: u8) {
        match value {
            RecordValue::Fields(mut slots) => self.emit(Ok(&mut slots)),
            RecordValue::Encoded(text) if depth < MAX_ENCODING_DEPTH => {
                let mut de = serde_json::Deserializer::from_str(&text);
                let result =
                    RecordSeed { fields: self.fields.names() }.deserialize(&mut de).and_then(|r| de.end().map(|()| r));
                match result {
                    Ok(inner) => self.record_value(inner, depth + 1),
                    Err(error) => self.reject(format!("malformed JSON inside a JSON string: {error}")),
                }
            }
            RecordValue::Encoded(_) => self.reject("JSON encoded in a JSON string more than twice".into()),
            RecordValue::NotARecord(kind) => self.reject(format!("expected a JSON object, found {kind}")),
        }
    }

    /// CSV or TSV with a header row; a ragged or non-UTF-8 row rejects only its record.
    fn delimited(&mut self, body: &[u8], delimiter: u8) {
        let mut reader =
            csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(false).from_reader(body);
        let columns: Vec<Option<usize>> = match reader.headers() {
            Ok(headers) => headers.iter().map(|h| self.field_index(h)).collect(),
            Err(error) => return self.reject(format!("unreadable header row: {}", csv_reason(&error))),
        };
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let mut slots: Vec<Raw<'_>> = vec![Raw::Missing; self.fields.len()];
                    for (cell, column) in record.iter().zip(&columns) {
                        if let Some(index) = column {
                            slots[*index] = Raw::Str(Cow::Borrowed(cell));
                        }
                    }
                    self.emit(Ok(&mut slots));
                }
                Err(error) => {
                    let fatal = matches!(error.kind(), csv::ErrorKind::Io(_));
                    self.reject(csv_reason(&error));
                    if fatal {
                        break;
                    }
                }
            }
        }
    }
}

/// A CSV error in words, without quoting data.
fn csv_reason(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("row has {len} fields, the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "row is not valid UTF-8".into(),
        _ => "unreadable row".into(),
    }
}

/// A JSON value where a record was expected.
enum RecordValue<'de> {
    Fields(Vec<Raw<'de>>),
    Encoded(String),
    NotARecord(&'static str),
}

struct RecordSeed<'f> {
    fields: &'f [&'f str],
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = RecordValue<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(RecordVisitor { fields: self.fields })
    }
}

struct RecordVisitor<'f> {
    fields: &'f [&'f str],
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = RecordValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = vec![Raw::Missing; self.fields.len()];
        // Senders usually keep one field order: try the field after the last match first.
        let mut expected = 0;
        while let Some(index) = map.next_key_seed(KeySeed { fields: self.fields, expected })? {
            match index {
                Some(i) => {
                    slots[i] = map.next_value_seed(RawSeed)?;
                    expected = i + 1;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RecordValue::Fields(slots))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RecordValue::Encoded(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(RecordValue::Encoded(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RecordValue::NotARecord("an array"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(RecordValue::NotARecord("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(RecordValue::NotARecord("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(RecordValue::NotARecord("a number"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RecordValue::NotARecord("a boolean"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RecordValue::NotARecord("null"))
    }
}

/// The top-level document: one record, an array of records, or an encoded document.
struct DocumentVisitor<'d, 'f, 'c, 'o> {
    decoder: &'d mut Decoder<'f, 'c, 'o>,
    depth: u8,
}

impl<'de> Visitor<'de> for DocumentVisitor<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object, array or string")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let record = RecordVisitor { fields: self.decoder.fields.names() }.visit_map(map)?;
        self.decoder.record_value(record, self.depth);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element_seed(RecordSeed { fields: self.decoder.fields.names() })? {
            self.decoder.record_value(record, self.depth);
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        if self.depth >= MAX_ENCODING_DEPTH {
            self.decoder.reject("JSON encoded in a JSON string more than twice".into());
            return Ok(());
        }
        if self.decoder.flat_document(text.as_bytes()) {
            return Ok(());
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let inner = DocumentVisitor { decoder: &mut *self.decoder, depth: self.depth + 1 };
        if let Err(error) = de.deserialize_any(inner).and_then(|()| de.end()) {
            self.decoder.reject(format!("malformed JSON inside a JSON string: {error}"));
        }
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.decoder.reject("expected a JSON object, found a number".into());
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_i64(v as i64)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.visit_i64(0)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.decoder.reject("expected a JSON object, found a boolean".into());
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.decoder.reject("expected a JSON object, found null".into());
        Ok(())
    }
}

/// Maps an object key to the index of the declared field it names, without allocating.
struct KeySeed<'f> {
    fields: &'f [&'f str],
    /// The index most likely to match (the one after the previous key's).
    expected: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(field_for_key(self.fields, self.expected, key))
    }
}

/// The index of the declared field that object key `key` names: `expected` when the key is
/// exactly its name (the usual case, checked first), else the field whose name matches the
/// trimmed key case-insensitively.
#[inline(always)]
pub(crate) fn field_for_key(fields: &[&str], expected: usize, key: &str) -> Option<usize> {
    if fields.get(expected).is_some_and(|f| same_bytes(f.as_bytes(), key.as_bytes())) {
        return Some(expected);
    }
    let key = key.trim();
    fields.iter().position(|f| f.eq_ignore_ascii_case(key))
}

/// Captures one scalar value, borrowing strings from the input where it can.
struct RawSeed;

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = Raw<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RawSeed {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Raw::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Raw::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Nested)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Raw::Nested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["PatientID", "LabValue"];

    /// Decodes and renders each record as `index:value,value` or `index:!reason`.
    fn decode_all(format: Format, body: &str) -> Vec<String> {
        decode_rendered(format, body.as_bytes(), true)
    }

    fn decode_rendered(format: Format, body: &[u8], fast: bool) -> Vec<String> {
        decode_named(FIELDS, format, body, fast)
    }

    fn decode_named(fields: &[&str], format: Format, body: &[u8], fast: bool) -> Vec<String> {
        let mut out = Vec::new();
        decode_with(
            format,
            body,
            &FieldNames::new(fields.iter().copied()),
            &mut |index, record| {
                out.push(match record {
                    Ok(slots) => {
                        format!("{index}:{}", slots.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(","))
                    }
                    Err(e) => format!("{index}:!{}", e.reason),
                });
            },
            fast,
        );
        out
    }

    /// The fast reader and the general one agree on every body: the usual shapes, edge cases,
    /// and tens of thousands of random mutations of them (bytes replaced, inserted, deleted).
    #[test]
    fn the_fast_reader_reads_exactly_what_the_general_reader_reads() {
        let bases: &[&[u8]] = &[
            br#"{"PatientID": "a1", "LabValue": 12.5}"#,
            br#"[{"PatientID":"a","LabValue":-3},{"labvalue":1e3,"PATIENTID":"b","x":null},{}]"#,
            br#"{"PatientID": "Zo\u00eb", "LabValue": true}"#,
            "{\"PatientID\": \"Zoë Ünal 患者\", \"LabValue\": 0.1}".as_bytes(),
            br#"{"LabValue": 2.2250738585072014e-308, "PatientID": null}"#,
            br#"{"LabValue": 9007199254740993.0}"#,
            br#"{"LabValue": 123456789012345678}"#,
            br#"{"LabValue": 17976931348623157e292}"#,
            br#"{"LabValue": 4.9e-324, "LabValue": -0.0}"#,
            br#"{"LabValue": 0.30000000000000004, " PatientID ": "t"}"#,
            br#""{\"PatientID\": \"p\", \"LabValue\": 1.25}""#,
            b"\t\r\n {\"PatientID\" :\"a\" , \"LabValue\":false}\n",
            br#"[]"#,
            br#"{}"#,
        ];
        let alphabet: &[u8] = b"{}[]\",:\\ \t\n\r-+.eE0123456789tfnulrsaxP\x00\x1f\x7f\xc3\xa9\xff";
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        // The fast reader does take the usual bodies (else this test would compare nothing).
        let read_fast = |body: &[u8]| {
            let names = FieldNames::new(FIELDS.iter().copied());
            let mut decoder = Decoder { fields: &names, on_record: &mut |_, _| {}, next_index: 0, fast: true };
            decoder.flat_document(body)
        };
        assert!(bases[..10].iter().filter(|b| !b.contains(&b'\\')).all(|b| read_fast(b)));
        assert!(read_fast(bases[11]) && read_fast(bases[12]) && !read_fast(bases[10]));
        let mut checked = 0;
        for base in bases {
            for format in [Format::Json, Format::Ndjson] {
                assert_eq!(decode_rendered(format, base, true), decode_rendered(format, base, false), "{base:?}");
            }
            for _ in 0..3_000 {
                let mut body = base.to_vec();
                for _ in 0..1 + random(3) {
                    let at = random(body.len() + 1);
                    let byte = alphabet[random(alphabet.len())];
                    match random(3) {
                        0 if at < body.len() => body[at] = byte,
                        1 if at < body.len() => {
                            body.remove(at);
                        }
                        _ => body.insert(at, byte),
                    }
                }
                let format = if random(4) == 0 { Format::Ndjson } else { Format::Json };
                let fast = decode_rendered(format, &body, true);
                assert_eq!(fast, decode_rendered(format, &body, false), "{:?}", String::from_utf8_lossy(&body));
                checked += 1;
            }
        }
        assert_eq!(checked, bases.len() * 3_000);
    }

    #[test]
    fn keys_are_matched_whatever_the_length_of_the_names() {
        let long = "PatientPopulationPercentageBelowPoverty";
        let names = ["a", "abc", "abcde", "PatientID", "AdmissionStartDate", long];
        let body = format!(
            r#"{{"a":1,"abc" :2,"ABCDE":3,"PatientID":4,"AdmissionStartDate": 5,"{long}":6,"abcd":7,"PatientIDs":8}}"#
        );
        let expected = vec!["0:Int(1),Int(2),Int(3),Int(4),Int(5),Int(6)".to_string()];
        for fast in [true, false] {
            assert_eq!(decode_named(&names, Format::Json, body.as_bytes(), fast), expected, "fast: {fast}");
        }
        // Out of order, so that the expected name is never the key.
        let body = format!(r#"{{"{long}":6,"AdmissionStartDate":5,"PatientID":4,"abcde":3,"abc":2,"a":1}}"#);
        for fast in [true, false] {
            assert_eq!(decode_named(&names, Format::Json, body.as_bytes(), fast), expected, "fast: {fast}");
        }
    }

    /// A declared name holding a character JSON escapes is matched by its bytes only as JSON
    /// writes it (escaped): a key written with that raw character is not JSON, and is refused as
    /// the general reader refuses it.
    #[test]
    fn names_json_would_escape_are_matched_only_as_decoded_keys() {
        let names = ["a\"b", "c"];
        let escaped = decode_named(&names, Format::Json, br#"{"a\"b": 1, "c": 2}"#, true);
        assert_eq!(escaped, vec!["0:Int(1),Int(2)"]);
        let raw = br#"{"a"b": 1, "c": 2}"#;
        let refused = decode_named(&names, Format::Json, raw, true);
        assert_eq!(refused, vec!["0:!malformed JSON: expected `:` at line 1 column 5"]);
        assert_eq!(refused, decode_named(&names, Format::Json, raw, false));
    }

    #[test]
    fn a_plain_object_is_one_record_with_unknown_keys_ignored() {
        let out = decode_all(Format::Json, r#"{"ID": 7, "patientid": "p1", "LABVALUE": 1.5, "x": {"y": 1}}"#);
        assert_eq!(out, vec![r#"0:Str("p1"),Float(1.5)"#]);
    }

    #[test]
    fn a_double_encoded_object_is_decoded() {
        let out = decode_all(Format::Json, r#""{\"PatientID\": \"p1\", \"LabValue\": 3}""#);
        assert_eq!(out, vec![r#"0:Str("p1"),Int(3)"#]);
    }

    #[test]
    fn arrays_hold_objects_or_encoded_objects_and_bad_elements_are_rejected_alone() {
        let out = decode_all(Format::Json, r#"[{"PatientID": "a"}, "{\"PatientID\": \"b\"}", 5, {"PatientID": null}]"#);
        assert_eq!(
            out,
            vec![
                r#"0:Str("a"),Missing"#,
                r#"1:Str("b"),Missing"#,
                "2:!expected a JSON object, found a number",
                "3:Null,Missing"
            ]
        );
    }

    #[test]
    fn ndjson_lines_are_records_and_a_bad_line_is_rejected_alone() {
        let body = "{\"PatientID\": \"a\"}\r\n\n{\"PatientID\": \r\n{\"PatientID\": \"c\"}\n";
        let out = decode_all(Format::Ndjson, body);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], r#"0:Str("a"),Missing"#);
        assert!(out[1].starts_with("1:!malformed JSON: EOF while parsing"), "{}", out[1]);
        assert_eq!(out[2], r#"2:Str("c"),Missing"#);
    }

    #[test]
    fn ndjson_sent_as_json_is_recognized() {
        let out = decode_all(Format::Json, "{\"PatientID\": \"a\"}\n{\"PatientID\": \"b\"}\n");
        assert_eq!(out, vec![r#"0:Str("a"),Missing"#, r#"1:Str("b"),Missing"#]);
    }

    #[test]
    fn malformed_json_is_one_rejection() {
        let out = decode_all(Format::Json, r#"{"PatientID": "a""#);
        assert_eq!(out, vec!["0:!malformed JSON: EOF while parsing an object at line 1 column 17"]);
    }

    #[test]
    fn csv_with_bom_crlf_and_junk_columns() {
        let body = "\u{feff}Unnamed: 0,PATIENTID,labvalue\r\n0,p1,2.5\r\n1,p2\r\n2,p3,\r\n";
        let out = decode_all(Format::Csv, body);
        assert_eq!(
            out,
            vec![
                r#"0:Str("p1"),Str("2.5")"#.to_string(),
                "1:!row has 2 fields, the header has 3".to_string(),
                r#"2:Str("p3"),Str("")"#.to_string(),
            ]
        );
    }

    #[test]
    fn tsv_is_read_and_text_plain_is_sniffed() {
        let body = "PatientID\tLabValue\np1\t7\n";
        assert_eq!(detect("text/plain", body.as_bytes()), Some(Format::Tsv));
        assert_eq!(detect("text/plain", b"  [1]"), Some(Format::Json));
        assert_eq!(detect("text/plain", b"a,b\n1,2"), Some(Format::Csv));
        assert_eq!(detect("application/xml", b"<a/>"), None);
        assert_eq!(decode_all(Format::Tsv, body), vec![r#"0:Str("p1"),Str("7")"#]);
    }
}
