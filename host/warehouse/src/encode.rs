//! Arrow record batches to Parquet bytes.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::ZstdLevel;
use parquet::file::properties::WriterProperties;

use crate::error::WarehouseError;

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Zstandard, level 1: small files, fast enough to keep up with the stream.
    #[default]
    Zstd,
    /// Snappy: faster, larger.
    Snappy,
}

/// How data files are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Codec.
    pub compression: Compression,
    /// Rows per row group.
    pub row_group_rows: usize,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self { compression: Compression::default(), row_group_rows: 128 * 1024 }
    }
}

impl EncodeOptions {
    fn properties(&self) -> WriterProperties {
        let codec = match self.compression {
            Compression::Zstd => parquet::basic::Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1 is valid")),
            Compression::Snappy => parquet::basic::Compression::SNAPPY,
        };
        WriterProperties::builder()
            .set_compression(codec)
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_created_by(concat!("sluice ", env!("CARGO_PKG_VERSION")).to_string())
            .build()
    }

    /// Encodes `batches` (all of `schema`) as one Parquet file of [`file_schema`]`(schema)`.
    ///
    /// Dictionary-encoded columns are handed to the writer as they are: Parquet reads them
    /// through their keys into its own dictionary, so the repeated provenance strings are never
    /// expanded into one copy per row.
    pub fn encode(&self, schema: SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, WarehouseError> {
        let mut writer = ArrowWriter::try_new(Vec::new(), file_schema(&schema), Some(self.properties()))?;
        for batch in batches {
            writer.write(batch)?;
        }
        Ok(Bytes::from(writer.into_inner()?))
    }
}

/// The schema data files are written with: dictionary-encoded columns (how the stream holds
/// strings repeated on every row of a request) as their value type. Parquet dictionary-encodes
/// them again on its own; readers, Trino and the schema checks see plain columns either way.
pub fn file_schema(schema: &Schema) -> SchemaRef {
    let plain = |field: &Arc<Field>| match field.data_type() {
        DataType::Dictionary(_, value) => Arc::new(field.as_ref().clone().with_data_type(value.as_ref().clone())),
        _ => field.clone(),
    };
    Arc::new(Schema::new_with_metadata(
        schema.fields().iter().map(plain).collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, DictionaryArray, Int32Array, StringArray};
    use arrow::datatypes::Int32Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    #[test]
    fn dictionary_columns_are_written_as_plain_strings() {
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema =
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false), Field::new("user", dictionary, false)]));
        let users = DictionaryArray::<Int32Type>::new(
            Int32Array::from(vec![0, 0, 1, 0]),
            Arc::new(StringArray::from(vec!["clinic", "lab"])),
        );
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1, 2, 3, 4])), Arc::new(users)])
                .unwrap();
        let plain = file_schema(&schema);
        assert_eq!(plain.field(1).data_type(), &DataType::Utf8);
        assert_eq!(plain.field(0), schema.field(0));

        let bytes = EncodeOptions::default().encode(schema, &[batch.clone(), batch]).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
        let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(read[0].schema(), plain, "the file holds plain strings, also in its Arrow metadata");
        let users: Vec<&str> = read.iter().flat_map(|b| b.column(1).as_string::<i32>().iter().flatten()).collect();
        assert_eq!(users, ["clinic", "clinic", "lab", "clinic", "clinic", "clinic", "lab", "clinic"]);
    }
}
