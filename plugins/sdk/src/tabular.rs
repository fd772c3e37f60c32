//! Plugins for flat records: declare the fields, get every body shape, typing, NULL handling,
//! per-record rejections, canonical records and partition keys for free.

use crate::batch::Batch;
use crate::flat;
use crate::output::{Origin, Output, Rejection, SplitOutput, TableBuilder, Value};
use crate::plugin::Plugin;
use crate::records::{self, FieldNames, Raw, RecordError};
use crate::settings::Settings;
use crate::values;
use sluice_contract::{Column, Manifest, Setting, TableSchema};

/// The content type of canonical records produced by `split`.
pub const CANONICAL_CONTENT_TYPE: &str = "application/json";

/// One field of a flat record: the column it fills and the name senders use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The column (its name is the lowercase table column).
    pub column: Column,
    /// The sender's field name (`PatientID`), matched ignoring case, spaces, `_`, `-` and `.`.
    pub source: &'static str,
}

impl Field {
    /// A field named `source` by senders, filling `column`.
    pub fn new(source: &'static str, column: Column) -> Self {
        Self { column, source }
    }
}

/// A plugin that writes one table, one row per flat record.
pub trait RecordPlugin: Sized + 'static {
    /// Plugin name.
    const NAME: &'static str;
    /// Plugin version.
    const VERSION: &'static str;
    /// Description.
    const DOC: &'static str;
    /// Table name.
    const TABLE: &'static str;
    /// What one row of the table is.
    const TABLE_DOC: &'static str;
    /// Index (in `fields()`) of the field used as partition key, if any: its value, when a
    /// string or an integer, keeps one subject's records in order.
    const KEY_FIELD: Option<usize> = None;

    /// The fields, in column order.
    fn fields() -> Vec<Field>;

    /// Configuration keys.
    fn settings() -> Vec<Setting> {
        Vec::new()
    }

    /// Builds a configured plugin.
    fn configure(settings: &Settings) -> Result<Self, String>;

    /// A last look at each typed row (one value per field) before it is accepted; return the
    /// reason and the field at fault to reject it. Used for filters.
    fn check(&self, _row: &[Value<'_>]) -> Result<(), (String, Option<&'static str>)> {
        Ok(())
    }
}

/// Adapts a [`RecordPlugin`] to [`Plugin`].
#[derive(Debug)]
pub struct Records<P> {
    plugin: P,
    fields: Vec<Field>,
    names: FieldNames<'static>,
    schema: TableSchema,
}

impl<P: RecordPlugin> Records<P> {
    /// The wrapped plugin.
    pub fn inner(&self) -> &P {
        &self.plugin
    }

    fn schema() -> TableSchema {
        TableSchema {
            name: P::TABLE.into(),
            doc: P::TABLE_DOC.into(),
            columns: P::fields().into_iter().map(|f| f.column).collect(),
        }
    }

    /// Decodes every record of the batch; `on_row` gets the payload index, record index, the
    /// raw values and the typed row of each valid record; rejections are collected.
    fn each_row(
        &self,
        batch: &Batch<'_>,
        rejected: &mut Vec<Rejection>,
        mut on_row: impl FnMut(u32, u32, &[Raw<'_>], &[Value<'_>]),
    ) {
        for (input, payload) in batch.payloads() {
            let Some(format) = records::detect(batch.content_type(), payload) else {
                rejected.push(Rejection {
                    input,
                    record: 0,
                    reason: format!("content type `{}` is not supported", batch.content_type()),
                    field: None,
                });
                continue;
            };
            records::decode(format, payload, &self.names, &mut |record, raw: Result<&mut [Raw<'_>], RecordError>| {
                let raw = match raw {
                    Ok(raw) => raw,
                    Err(error) => {
                        rejected.push(Rejection { input, record, reason: error.reason, field: None });
                        return;
                    }
                };
                // On the stack for the usual handful of fields; the heap only for wide records.
                let mut stack = [Value::Null; 16];
                let mut heap = Vec::new();
                let typed: &mut [Value<'_>] = if self.fields.len() <= stack.len() {
                    &mut stack[..self.fields.len()]
                } else {
                    heap.resize(self.fields.len(), Value::Null);
                    &mut heap
                };
                for ((field, value), slot) in self.fields.iter().zip(raw.iter()).zip(typed.iter_mut()) {
                    match values::convert(value, field.column.column_type) {
                        Ok(Value::Null) if !field.column.nullable => {
                            rejected.push(reject(input, record, field, "is missing or Unknown"));
                            return;
                        }
                        Ok(typed_value) => *slot = typed_value,
                        Err(reason) => {
                            rejected.push(reject(input, record, field, reason));
                            return;
                        }
                    }
                }
                if let Err((reason, field)) = self.plugin.check(typed) {
                    rejected.push(Rejection { input, record, reason, field: field.map(Into::into) });
                    return;
                }
                on_row(input, record, raw, typed);
            });
        }
    }
}

fn reject(input: u32, record: u32, field: &Field, reason: &str) -> Rejection {
    Rejection { input, record, reason: format!("{} {reason}", field.source), field: Some(field.source.into()) }
}

impl<P: RecordPlugin> Plugin for Records<P> {
    fn manifest() -> Manifest {
        let mut content_types: Vec<String> = records::CONTENT_TYPES.iter().map(|c| (*c).into()).collect();
        content_types.dedup();
        Manifest {
            name: P::NAME.into(),
            version: P::VERSION.into(),
            doc: P::DOC.into(),
            content_types,
            settings: P::settings(),
            tables: vec![Self::schema()],
        }
    }

    fn configure(settings: &Settings) -> Result<Self, String> {
        let fields = P::fields();
        let sources: Vec<&str> = fields.iter().map(|f| f.source).collect();
        if let Some(reason) = records::indistinct_names(&sources) {
            return Err(reason);
        }
        Ok(Self {
            plugin: P::configure(settings)?,
            names: FieldNames::new(fields.iter().map(|f| f.source)),
            fields,
            schema: Self::schema(),
        })
    }

    fn split(&self, batch: &Batch<'_>) -> SplitOutput {
        let mut out = SplitOutput::new(CANONICAL_CONTENT_TYPE);
        let mut rejected = Vec::new();
        let mut canonical = Vec::new();
        self.each_row(batch, &mut rejected, |input, record, raw, typed| {
            canonical.clear();
            write_canonical(&mut canonical, self.names.keys(), raw);
            let key = P::KEY_FIELD.and_then(|i| match typed.get(i) {
                Some(Value::String(s)) => Some((*s).to_string()),
                Some(Value::Int32(n)) => Some(n.to_string()),
                Some(Value::Int64(n)) => Some(n.to_string()),
                _ => None,
            });
            out.push(&canonical, Origin { input, record, key, id: None });
        });
        out.rejected = rejected;
        out
    }

    fn transform(&self, batch: &Batch<'_>) -> Output {
        let mut table = TableBuilder::new(&self.schema);
        let mut rejected = Vec::new();
        self.each_row(batch, &mut rejected, |input, _, _, typed| table.push_row(input, typed));
        Output { tables: vec![table], rejected }
    }
}

/// Writes the record as a compact JSON object of the declared fields (`keys`, from
/// [`FieldNames`]), as the sender wrote them.
fn write_canonical(out: &mut Vec<u8>, keys: &[String], raw: &[Raw<'_>]) {
    out.push(b'{');
    let mut first = true;
    for (key, value) in keys.iter().zip(raw) {
        if matches!(value, Raw::Missing | Raw::Nested) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(key.as_bytes());
        // Each value straight into the buffer (a non-finite float, which JSON cannot hold,
        // becomes null).
        let written = match value {
            Raw::Missing | Raw::Nested | Raw::Null => serde_json::to_writer(&mut *out, &()),
            Raw::Str(text) => {
                write_json_string(out, text);
                Ok(())
            }
            Raw::Int(number) => serde_json::to_writer(&mut *out, number),
            Raw::Float(number) => serde_json::to_writer(&mut *out, number),
            Raw::Bool(flag) => serde_json::to_writer(&mut *out, flag),
        };
        written.expect("writing to a Vec");
    }
    out.push(b'}');
}

/// Writes `text` as a JSON string, exactly as serde_json does; the usual text, which needs no
/// escape, is found so with a 16-byte scan and copied as it is (serde_json looks at every byte).
fn write_json_string(out: &mut Vec<u8>, text: &str) {
    if flat::is_plain_json_text(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, text).expect("writing to a Vec");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn canonical_records_hold_the_declared_fields_as_sent() {
        let names = ["Id", "Name", "Count", "Value", "Flag", "Gone", "Nested", "Odd"];
        let raw = [
            Raw::Str(Cow::Borrowed("p\"1")),
            Raw::Null,
            Raw::Int(-7),
            Raw::Float(2.5),
            Raw::Bool(true),
            Raw::Missing,
            Raw::Nested,
            Raw::Float(f64::NAN),
        ];
        let names = FieldNames::new(names);
        let mut out = Vec::new();
        write_canonical(&mut out, names.keys(), &raw);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"Id":"p\"1","Name":null,"Count":-7,"Value":2.5,"Flag":true,"Odd":null}"#
        );
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        // Every byte that needs an escape, and some that do not, at every position of a
        // 16-byte scan step and across its end.
        let specials = ['"', '\\', '\u{0}', '\n', '\u{1f}', '\u{7f}', 'é', '€', '😀', ' ', '/'];
        for len in 0..40 {
            let plain: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCD".chars().take(len).collect();
            let mut texts = vec![plain.clone()];
            for at in 0..=len {
                for special in specials {
                    let mut text = plain.clone();
                    text.insert(at, special);
                    texts.push(text);
                }
            }
            for text in texts {
                let mut out = b"x".to_vec();
                write_json_string(&mut out, &text);
                assert_eq!(out[1..], serde_json::to_vec(&text).unwrap(), "{text:?}");
            }
        }
    }
}
