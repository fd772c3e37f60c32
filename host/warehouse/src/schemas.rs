//! The schemas a table's files were written with, recorded beside them: one empty Parquet file
//! per distinct schema, `<table>/_sluice_schema-<digest>.parquet` (hidden from readers, as the
//! leading `_` makes it). A table's schema is their merge, so that a column one plugin version
//! dropped cannot come back retyped in a later one — without reading every data file's footer.

use arrow::datatypes::{Field, Schema};
use sha2::{Digest, Sha256};

/// File names of schema records start with this.
const PREFIX: &str = "_sluice_schema-";

/// The file name `schema`'s record has: the same for the same columns (names, types, NULL
/// rules, in order), whoever writes it.
pub(crate) fn record_name(schema: &Schema) -> String {
    let mut digest = Sha256::new();
    for field in schema.fields() {
        digest.update(format!("{}\u{0}{}\u{0}{}\u{0}", field.name(), field.data_type(), field.is_nullable()));
    }
    format!("{PREFIX}{}.parquet", &hex::encode(digest.finalize())[..32])
}

/// Whether `name` is a schema record's file name.
pub(crate) fn is_record(name: &str) -> bool {
    name.starts_with(PREFIX) && name.ends_with(".parquet")
}

/// The table's schema once files of `new` have joined files of `old` (a change the stream's
/// checks allowed): `old`'s columns, nullable when either allows NULL, then the columns only
/// `new` has. Later versions are checked against it, so that a column missing from one version
/// cannot come back retyped.
pub fn merged_schema(old: &Schema, new: &Schema) -> Schema {
    let loosened = |field: &Field| match new.field_with_name(field.name()) {
        Ok(theirs) if theirs.is_nullable() => field.clone().with_nullable(true),
        _ => field.clone(),
    };
    let mut fields: Vec<Field> = old.fields().iter().map(|f| loosened(f)).collect();
    fields.extend(new.fields().iter().filter(|f| old.field_with_name(f.name()).is_err()).map(|f| f.as_ref().clone()));
    Schema::new(fields)
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::*;

    #[test]
    fn one_name_per_set_of_columns() {
        let a = Schema::new(vec![Field::new("a", DataType::Int32, true)]);
        let b = Schema::new(vec![Field::new("a", DataType::Int64, true)]);
        let required = Schema::new(vec![Field::new("a", DataType::Int32, false)]);
        assert_eq!(record_name(&a), record_name(&a.clone()));
        assert_ne!(record_name(&a), record_name(&b));
        assert_ne!(record_name(&a), record_name(&required));
        assert!(is_record(&record_name(&a)));
        assert!(!is_record("_sluice_table"));
    }

    #[test]
    fn a_merged_column_allows_null_once_either_side_does() {
        let required = Schema::new(vec![Field::new("a", DataType::Int32, false)]);
        let nullable = Schema::new(vec![Field::new("a", DataType::Int32, true), Field::new("b", DataType::Utf8, true)]);
        assert_eq!(merged_schema(&required, &nullable), nullable);
        assert_eq!(merged_schema(&nullable, &required), nullable);
    }
}
