//! Decoding request bodies into records of named fields, whatever shape the sender used.
//!
//! Accepted shapes (see docs/design.md): a JSON object; a JSON string holding a JSON document (the
//! seed's double encoding); a JSON array of either; NDJSON; CSV or TSV text with a header row.
//! A UTF-8 byte order mark and CRLF line ends are accepted everywhere. Field names are matched
//! ignoring case, spaces, `_`, `-` and `.`; fields the plugin does not declare are ignored.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::flat::{self, same_bytes};
use crate::structure;

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
            if sluice_contract::plain_text_is_json(body) {
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
    /// The names, matched ignoring case and separators against the sender's keys and CSV headers.
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
/// `fields` are the sender's field names, matched as [`names_field`] says.
pub fn decode(format: Format, body: &[u8], fields: &FieldNames<'_>, on_record: &mut OnRecord<'_>) {
    decode_with(format, body, fields, on_record, true);
}

/// [`decode`] with the general reader only, never the fast reader for flat JSON objects: what
/// [`decode`] must be indistinguishable from (tests and fuzzing compare the two).
pub fn decode_without_fast_reader(format: Format, body: &[u8], fields: &FieldNames<'_>, on_record: &mut OnRecord<'_>) {
    decode_with(format, body, fields, on_record, false);
}

/// [`decode`], with or without the fast reader for flat JSON objects (tests compare the two).
fn decode_with(format: Format, body: &[u8], fields: &FieldNames<'_>, on_record: &mut OnRecord<'_>, fast: bool) {
    let body = strip_bom(body);
    let mut decoder = Decoder { fields, on_record, next_index: 0, fast };
    match format {
        Format::Json => decoder.json_document(body, 0),
        Format::Ndjson => decoder.json_lines(body),
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
        // An object around the records (`{"records": [...]}`), or one with other names: say so,
        // rather than name the first required field as missing, or store a row of NULLs.
        if let Ok(slots) = &record
            && !slots.is_empty()
            && slots.iter().all(|slot| matches!(slot, Raw::Missing))
        {
            return self.reject(none_of_the_fields(self.fields.names()));
        }
        let index = self.next_index;
        self.next_index += 1;
        (self.on_record)(index, record);
    }

    fn reject(&mut self, reason: String) {
        self.emit(Err(RecordError { reason }));
    }

    fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.names().iter().position(|f| names_field(f, name))
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

    /// A whole body of JSON: one record, an array of records, a string holding either (the
    /// seed's double encoding, `depth` levels deep so far), or several documents one after
    /// another (NDJSON sent as JSON). Values are found by structure first and each is parsed on
    /// its own, so a value serde_json refuses (`1e400`, a lone surrogate) rejects its record and
    /// nothing else: every record in the body is either emitted or rejected.
    fn json_document(&mut self, body: &[u8], depth: u8) {
        if !self.flat_document(body) {
            self.general_document(body, depth);
        }
    }

    /// [`json_document`](Self::json_document) for what the fast reader does not take; kept out
    /// of line so that the usual record's path stays small (in Wasm, size and calls cost).
    #[inline(never)]
    #[cold]
    fn general_document(&mut self, body: &[u8], depth: u8) {
        let start = flat::skip_whitespace(body, 0);
        if body.get(start) == Some(&b'[')
            && let Some(elements) = structure::array_elements(body, start)
        {
            elements.into_iter().for_each(|element| self.json_record(&body[element], depth));
            return;
        }
        match structure::top_level_values(body) {
            Some(values) if values.len() == 1 => self.json_single(&body[values[0].clone()], depth),
            Some(values) if values.len() > 1 => {
                values.into_iter().for_each(|value| self.json_record(&body[value], depth));
            }
            // Not shaped like JSON documents, but several lines: NDJSON with a broken line
            // (which only that line's record pays for).
            _ if depth == 0
                && body.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count() > 1 =>
            {
                self.json_lines(body);
            }
            _ => self.reject(malformed_json(body, depth)),
        }
    }

    /// The one value of a JSON body: a record, or a string holding a whole document.
    fn json_single(&mut self, text: &[u8], depth: u8) {
        match self.parse_record(text) {
            None => {}
            Some(Ok(RecordValue::Encoded(inner))) if depth < MAX_ENCODING_DEPTH => {
                self.json_document(inner.as_bytes(), depth + 1);
            }
            Some(Ok(record)) => self.record_value(record, depth),
            Some(Err(reason)) => self.reject(in_string(reason, depth)),
        }
    }

    /// One value that should be a record: an object, or a string holding one.
    fn json_record(&mut self, text: &[u8], depth: u8) {
        match self.parse_record(text) {
            None => {}
            Some(Ok(record)) => self.record_value(record, depth),
            Some(Err(reason)) => self.reject(in_string(reason, depth)),
        }
    }

    /// Reads a value that should be a record: `None` when the fast reader read and emitted it,
    /// else what serde_json made of it (or why it refused it).
    fn parse_record<'t>(&mut self, text: &'t [u8]) -> Option<Result<RecordValue<'t>, String>> {
        let start = flat::skip_whitespace(text, 0);
        if self.fast && text.get(start) == Some(&b'{') && self.flat_object(text, start) {
            return None;
        }
        let mut de = serde_json::Deserializer::from_slice(text);
        let result = RecordSeed { fields: self.fields.names() }.deserialize(&mut de).and_then(|r| de.end().map(|()| r));
        let result = result.map_err(|error| format!("malformed JSON: {}", error_without_position(&error)));
        if let Ok(RecordValue::Fields { repeated: true, .. }) = &result
            && let Some(reason) = keys_naming_a_field_twice(text, self.fields.names())
        {
            return Some(Err(reason));
        }
        Some(result)
    }

    /// One JSON document per non-blank line; a bad line rejects only its record.
    fn json_lines(&mut self, body: &[u8]) {
        for line in body.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let before = self.next_index;
            self.json_record(line, 0);
            debug_assert_eq!(self.next_index, before + 1);
        }
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
            RecordValue::Fields { mut slots, .. } => self.emit(Ok(&mut slots)),
            RecordValue::Encoded(text) if depth < MAX_ENCODING_DEPTH => match self.parse_record(text.as_bytes()) {
                None => {}
                Some(Ok(inner)) => self.record_value(inner, depth + 1),
                Some(Err(reason)) => self.reject(in_string(reason, depth + 1)),
            },
            RecordValue::Encoded(_) => self.reject("JSON encoded in a JSON string more than twice".into()),
            RecordValue::NotARecord(kind) => self.reject(format!("expected a JSON object, found {kind}")),
        }
    }

    /// CSV or TSV with a header row; a ragged or non-UTF-8 row rejects only its record. A first
    /// line `sep=X` (Excel's) sets the delimiter. A header that names a field twice, or none of
    /// the fields, rejects every row with one reason that says so.
    fn delimited(&mut self, body: &[u8], delimiter: u8) {
        let (body, delimiter) = excel_separator_line(body).unwrap_or((body, delimiter));
        let mut reader =
            csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(false).from_reader(body);
        let header = match reader.byte_headers() {
            Ok(header) => header.clone(),
            Err(error) => {
                let reason = format!("unreadable header row: {}", csv_reason(&error));
                return self.reject_rows(&mut reader, &reason);
            }
        };
        let columns: Vec<Option<usize>> =
            header.iter().map(|h| std::str::from_utf8(h).ok().and_then(|h| self.field_index(h))).collect();
        if let Some(reason) = header_fault(&header, &columns, self.fields.names(), delimiter) {
            return self.reject_rows(&mut reader, &reason);
        }
        let mut record = csv::StringRecord::new();
        loop {
            let start = reader.position().byte() as usize;
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    // `"Black" or African` would be read as `Black or African`.
                    let end = (reader.position().byte() as usize).min(body.len());
                    let row = body.get(start..end).unwrap_or_default();
                    if row.contains(&b'"')
                        && let Some((_, field)) = sluice_contract::quote_faults(row, delimiter).text_after_closing_quote
                    {
                        let name = header.get(field).map(String::from_utf8_lossy).unwrap_or_default();
                        self.reject(format!(
                            "column {} ({name}) has text after its closing quote; quote the whole value and double \
                             the quotes in it (\"\"\"a\"\" b\")",
                            field + 1
                        ));
                        continue;
                    }
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

    /// Rejects every remaining row of `reader` with `reason`.
    fn reject_rows(&mut self, reader: &mut csv::Reader<&[u8]>, reason: &str) {
        let mut row = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut row) {
                Ok(false) => break,
                Ok(true) => self.reject(reason.to_string()),
                Err(error) => {
                    self.reject(reason.to_string());
                    if matches!(error.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                }
            }
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

/// What is wrong with a CSV header for these fields, if anything: a field named by more than one
/// column (names match ignoring case and separators, so `PatientID` and `patient_id` are the same column),
/// or no field named at all (with a hint when the header looks separated by another character).
fn header_fault(header: &csv::ByteRecord, columns: &[Option<usize>], fields: &[&str], delimiter: u8) -> Option<String> {
    for (field, name) in fields.iter().enumerate() {
        let named: Vec<String> = columns
            .iter()
            .zip(header.iter())
            .filter(|(column, _)| **column == Some(field))
            .map(|(_, text)| format!("`{}`", String::from_utf8_lossy(text).escape_debug()))
            .collect();
        if named.len() > 1 {
            return Some(format!(
                "the header names column `{name}` {} times ({}; column names are {NAMES_MATCHED}): keep one",
                named.len(),
                named.join(", ")
            ));
        }
    }
    if fields.is_empty() || columns.iter().any(Option::is_some) {
        return None;
    }
    let mut found: String = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect::<Vec<_>>()
        .join(&char::from(delimiter).to_string());
    if found.chars().count() > 120 {
        found = found.chars().take(120).collect::<String>() + "…";
    }
    let mut reason = format!(
        "no column of the header names a field this source reads (expected {}; found `{}`)",
        fields.join(", "),
        found.escape_debug()
    );
    let separated_by = |c: u8| c != delimiter && header.iter().any(|h| h.contains(&c));
    if let Some(other) = [b';', b'\t', b',', b'|'].into_iter().find(|&c| separated_by(c)) {
        let name = match other {
            b';' => "`;`",
            b'\t' => "tabs",
            b',' => "`,`",
            _ => "`|`",
        };
        let advice = match (other, delimiter) {
            (b'\t', _) => "send it as text/tab-separated-values".to_string(),
            (b',', b'\t') => "send it as text/csv".to_string(),
            // A CSV whose delimiter is not a comma: its `sep=` line named another one.
            (b',', _) => "the body's `sep=` line names another delimiter: drop that line".to_string(),
            (other, b'\t') => format!("send it as text/csv starting with the line `sep={}`", char::from(other)),
            (other, _) => format!("start the body with the line `sep={}` or use commas", char::from(other)),
        };
        reason.push_str(&format!("; the header looks separated by {name}: {advice}"));
    }
    Some(reason)
}

/// Why a record that holds none of the fields `names` is refused.
fn none_of_the_fields(names: &[&str]) -> String {
    let mut listed = names.iter().take(4).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 4 {
        listed.push_str(", …");
    }
    format!(
        "the record holds none of this source's fields ({listed}); send records themselves, not an object around them"
    )
}

/// A CSV error in words, without quoting data.
fn csv_reason(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("row has {len} field{}, the header has {expected_len}", if *len == 1 { "" } else { "s" })
        }
        csv::ErrorKind::Utf8 { .. } => "row is not valid UTF-8".into(),
        _ => "unreadable row".into(),
    }
}

/// Why `text`, which is not shaped like JSON, was refused, in serde_json's words.
fn malformed_json(text: &[u8], depth: u8) -> String {
    let reason = match serde_json::from_slice::<IgnoredAny>(text) {
        Err(error) => format!("malformed JSON: {}", error_without_position(&error)),
        Ok(_) => "malformed JSON".to_string(),
    };
    in_string(reason, depth)
}

/// `reason`, saying that the JSON it is about was inside a JSON string when it was.
fn in_string(reason: String, depth: u8) -> String {
    if depth == 0 { reason } else { reason.replacen("malformed JSON", "malformed JSON inside a JSON string", 1) }
}

/// A serde_json error's message, its position given within the record read (`line L column C`
/// of the record, not of the body, which may hold many).
fn error_without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rsplit_once(" at line ") {
        Some((what, _)) if error.line() > 0 => {
            format!("{what} (line {}, column {} of the record)", error.line(), error.column())
        }
        _ => message,
    }
}

/// When keys of the object in `text` name the same field (keys match ignoring case and separators, and an
/// exact repeat names it twice too): why the record is refused. RFC 8259 leaves repeated names
/// open and most JSON readers keep the last; a record that gives a field twice, perhaps with two
/// values, is refused instead, as a CSV header that names a column twice is.
fn keys_naming_a_field_twice(text: &[u8], fields: &[&str]) -> Option<String> {
    let keys = object_keys(text)?;
    fields.iter().find_map(|field| {
        let given: Vec<&String> = keys.iter().filter(|k| names_field(field, k)).collect();
        if given.len() < 2 {
            return None;
        }
        let mut spellings: Vec<&String> = Vec::with_capacity(given.len());
        for key in &given {
            if !spellings.contains(key) {
                spellings.push(key);
            }
        }
        Some(match spellings.as_slice() {
            [key] => format!("key `{}` is given {} times: send it once", key.escape_debug(), given.len()),
            _ => {
                let spelled: Vec<String> = spellings.iter().map(|k| format!("`{}`", k.escape_debug())).collect();
                format!("keys {} all name field `{field}` (keys are {NAMES_MATCHED}): send it once", spelled.join(", "))
            }
        })
    })
}

/// The keys of the JSON object in `text` in order, repeats included; `None` when it is not one.
fn object_keys(text: &[u8]) -> Option<Vec<String>> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(key);
            }
            Ok(keys)
        }
    }
    de::Deserializer::deserialize_map(&mut serde_json::Deserializer::from_slice(text), Keys).ok()
}

/// A JSON value where a record was expected.
enum RecordValue<'de> {
    /// The declared fields' values; `repeated` when a field was named by more than one key.
    Fields {
        slots: Vec<Raw<'de>>,
        repeated: bool,
    },
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
        let mut repeated = false;
        while let Some(index) = map.next_key_seed(KeySeed { fields: self.fields, expected })? {
            match index {
                Some(i) => {
                    repeated |= !matches!(slots[i], Raw::Missing);
                    slots[i] = map.next_value_seed(RawSeed)?;
                    expected = i + 1;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RecordValue::Fields { slots, repeated })
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
/// key as [`names_field`] says.
#[inline(always)]
pub(crate) fn field_for_key(fields: &[&str], expected: usize, key: &str) -> Option<usize> {
    if fields.get(expected).is_some_and(|f| same_bytes(f.as_bytes(), key.as_bytes())) {
        return Some(expected);
    }
    fields.iter().position(|f| names_field(f, key))
}

/// Whether the sender's `key` (a JSON key or a CSV header) names the declared field `name`:
/// compared ignoring ASCII case, surrounding whitespace and the separators ` `, `_`, `-` and `.`,
/// so that `Lab Value`, `lab_value` and `LAB-VALUE` all name `LabValue` (a spelling that named
/// no field would leave its value out of the record, unnoticed).
pub(crate) fn names_field(name: &str, key: &str) -> bool {
    significant_bytes(name).eq(significant_bytes(key))
}

/// How a sender's keys and headers are matched to declared names, as errors word it.
const NAMES_MATCHED: &str = "matched ignoring case, spaces, `_`, `-` and `.`";

/// Why a plugin's declared field names cannot all be told apart in what senders send (two that
/// [`names_field`] matches, other than by case alone), if they cannot.
pub(crate) fn indistinct_names(names: &[&str]) -> Option<String> {
    names.iter().enumerate().find_map(|(i, a)| {
        let b = names[i + 1..].iter().find(|b| names_field(a, b) && !a.trim().eq_ignore_ascii_case(b.trim()))?;
        Some(format!("fields `{a}` and `{b}` name one sender field (names are {NAMES_MATCHED}): declare it once"))
    })
}

/// The bytes of a name that [`names_field`] compares, lowercased.
fn significant_bytes(text: &str) -> impl Iterator<Item = u8> + '_ {
    text.trim().bytes().filter(|b| !matches!(b, b' ' | b'_' | b'-' | b'.')).map(|b| b.to_ascii_lowercase())
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
        // (The one naming a field twice goes to the general reader, which decides whether that is
        // ambiguous.)
        let repeats_a_key = |b: &[u8]| b.windows(10).filter(|w| w == b"\"LabValue\"").count() > 1;
        assert!(bases[..10].iter().filter(|b| !b.contains(&b'\\') && !repeats_a_key(b)).all(|b| read_fast(b)));
        assert!(!read_fast(bases[8]));
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
        assert_eq!(refused, vec!["0:!malformed JSON: expected `:` (line 1, column 5 of the record)"]);
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
        assert_eq!(out, vec!["0:!malformed JSON: EOF while parsing an object (line 1, column 17 of the record)"]);
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
        // R's write.csv and Excel's "quote all" start with a quote, and are tables.
        assert_eq!(detect("text/plain", b"\"PatientID\",\"LabValue\"\n\"p1\",\"7\"\n"), Some(Format::Csv));
        assert_eq!(detect("text/plain", b"\"PatientID\"\t\"LabValue\"\n"), Some(Format::Tsv));
        assert_eq!(detect("text/plain", br#""{\"PatientID\": \"p1\"}""#), Some(Format::Json));
    }

    /// `"Black" or African` would be read as `Black or African`: such a row is rejected, naming
    /// the column, and the rows around it are read.
    #[test]
    fn text_after_a_closing_quote_rejects_its_row() {
        let body = "PatientID,LabValue\r\np1,\"7\"\r\np2,\"7\" mg\r\np3,\"a \"\"b\"\"\"\r\n";
        let reason = "column 2 (LabValue) has text after its closing quote; quote the whole value and double the \
                      quotes in it (\"\"\"a\"\" b\")";
        assert_eq!(
            decode_all(Format::Csv, body),
            vec![r#"0:Str("p1"),Str("7")"#.to_string(), format!("1:!{reason}"), r#"2:Str("p3"),Str("a \"b\"")"#.into()]
        );
        let tsv = "PatientID\tLabValue\n\"p1\" x\t7\np2\t8\n";
        let out = decode_all(Format::Tsv, tsv);
        assert!(out[0].starts_with("0:!column 1 (PatientID) has text after its closing quote"), "{out:?}");
        assert_eq!(out[1], r#"1:Str("p2"),Str("8")"#);
    }

    /// Values serde_json refuses although the body is well-formed JSON (the API's check lets
    /// them through): each rejects its own record and nothing else, whatever the shape and reader.
    #[test]
    fn a_value_serde_json_refuses_rejects_only_its_record() {
        let bad_values = [
            ("1e400", "number out of range"),
            ("-1e400", "number out of range"),
            (r#""\ud83d""#, "unexpected end of hex escape"),
            (r#""\udc00x""#, "surrogate"),
            (r#""\ud83d\u0041""#, "surrogate"),
        ];
        for (bad, expected) in bad_values {
            for at in [0, 10, 99] {
                let records: Vec<String> = (0..100)
                    .map(|i| {
                        let value = if i == at { bad.to_string() } else { i.to_string() };
                        format!(r#"{{"PatientID": "p{i}", "LabValue": {value}}}"#)
                    })
                    .collect();
                let array = format!("[{}]", records.join(","));
                let lines = records.join("\n");
                let encoded = serde_json::to_string(&array).unwrap();
                for (format, body) in
                    [(Format::Json, &array), (Format::Ndjson, &lines), (Format::Json, &lines), (Format::Json, &encoded)]
                {
                    for fast in [true, false] {
                        let out = decode_rendered(format, body.as_bytes(), fast);
                        let context = format!("{bad} at {at}, {format:?}, fast {fast}: {body:.80}");
                        assert_eq!(out.len(), 100, "{context}");
                        for (i, line) in out.iter().enumerate() {
                            let (index, rest) = line.split_once(':').unwrap();
                            assert_eq!(index, i.to_string(), "{context}");
                            assert_eq!(rest.starts_with('!'), i == at, "{context}: {line}");
                        }
                        assert!(out[at].contains(expected), "{context}: {}", out[at]);
                    }
                }
            }
        }
    }

    /// For every body, each record sent gets exactly one outcome, in order: bodies of random
    /// sizes and shapes with bad values at random positions, through both readers.
    #[test]
    fn every_record_sent_gets_one_outcome() {
        let bad_values =
            ["1e400", r#""\ud83d""#, r#""\udfff""#, "{}", "[1, 2]", r#""x\u0000y""#, "-0", "1E+400", r#""\\""#];
        let bad_records =
            ["5", "null", "[]", r#""not json""#, r#""{\"PatientID\": 1e400}""#, r#"{"patientid": 1, "PatientID": 2}"#];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut random = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for round in 0..2_000 {
            let sent = random(40);
            let records: Vec<String> = (0..sent)
                .map(|i| match random(8) {
                    0 => bad_records[random(bad_records.len())].to_string(),
                    1 | 2 => {
                        format!(r#"{{"PatientID": "p{i}", "LabValue": {}}}"#, bad_values[random(bad_values.len())])
                    }
                    _ => format!(r#"{{"PatientID": "p{i}", "LabValue": {i}.5}}"#),
                })
                .collect();
            let (format, body) = match random(4) {
                0 => (Format::Ndjson, records.join("\r\n")),
                1 if sent > 1 => (Format::Json, records.join("\n")),
                2 => (Format::Json, serde_json::to_string(&format!("[{}]", records.join(","))).unwrap()),
                _ => (Format::Json, format!("[{}]", records.join(", "))),
            };
            for fast in [true, false] {
                let out = decode_rendered(format, body.as_bytes(), fast);
                let indices: Vec<String> = out.iter().map(|o| o.split_once(':').unwrap().0.to_string()).collect();
                let expected: Vec<String> = (0..sent).map(|i| i.to_string()).collect();
                assert_eq!(indices, expected, "round {round}, fast {fast}: {body}");
            }
        }
    }

    #[test]
    fn declared_names_that_senders_could_not_tell_apart_are_refused() {
        assert_eq!(
            indistinct_names(&["PatientID", "LabValue", "Patient_ID"]).as_deref(),
            Some(
                "fields `PatientID` and `Patient_ID` name one sender field (names are matched ignoring case, \
                 spaces, `_`, `-` and `.`): declare it once"
            )
        );
        assert_eq!(indistinct_names(&["PatientID", "LabValue", "Lab"]), None);
        assert_eq!(indistinct_names(&["PatientID", "patientid"]), None, "one name in two cases is one field");
    }

    #[test]
    fn a_field_given_twice_is_refused_whether_its_keys_differ_in_case_or_not() {
        let body = br#"[{"PatientID": "a", "patientid": "b"}, {"LabValue": 1, "LabValue": 2}, {"LabValue": 1, "LabValue": 1, "PatientID": "p"}, {"PatientID": "a", "patientid": "b", "PatientID": "c"}, {"LabValue": 3}]"#;
        for fast in [true, false] {
            let out = decode_rendered(Format::Json, body, fast);
            assert_eq!(
                out,
                vec![
                    "0:!keys `PatientID`, `patientid` all name field `PatientID` (keys are matched ignoring case, spaces, `_`, `-` and `.`): send it once",
                    "1:!key `LabValue` is given 2 times: send it once",
                    "2:!key `LabValue` is given 2 times: send it once",
                    "3:!keys `PatientID`, `patientid` all name field `PatientID` (keys are matched ignoring case, spaces, `_`, `-` and `.`): send it once",
                    "4:Missing,Int(3)",
                ],
                "fast {fast}"
            );
        }
    }

    #[test]
    fn a_csv_header_naming_a_column_twice_is_refused_for_every_row() {
        for header in ["PatientID,LabValue,PatientID", "PatientID,LabValue,patientid"] {
            let body = format!("{header}\np1,1,p1\n,2,p2\n");
            let out = decode_all(Format::Csv, &body);
            let second = header.rsplit(',').next().unwrap();
            let reason = format!(
                "the header names column `PatientID` 2 times (`PatientID`, `{second}`; column names are matched \
                 ignoring case, spaces, `_`, `-` and `.`): keep one"
            );
            assert_eq!(out, vec![format!("0:!{reason}"), format!("1:!{reason}")]);
        }
    }

    #[test]
    fn a_header_naming_no_field_says_what_was_expected_and_found() {
        let out = decode_all(Format::Csv, "PatientID;LabValue\np1;2\np2;3\n");
        let reason = "no column of the header names a field this source reads (expected PatientID, LabValue; found \
                      `PatientID;LabValue`); the header looks separated by `;`: start the body with the line `sep=;` \
                      or use commas";
        assert_eq!(out, vec![format!("0:!{reason}"), format!("1:!{reason}")]);
        let out = decode_all(Format::Csv, "a,b\n1,2\n");
        assert_eq!(
            out,
            vec![
                "0:!no column of the header names a field this source reads (expected PatientID, LabValue; found `a,b`)"
            ]
        );
    }

    #[test]
    fn an_excel_separator_line_sets_the_delimiter() {
        let out = decode_all(Format::Csv, "sep=;\r\nPatientID;LabValue\r\np1;2,5\r\n");
        assert_eq!(out, vec![r#"0:Str("p1"),Str("2,5")"#]);
    }
}
