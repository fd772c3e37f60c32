//! Arrow record batches to Parquet bytes.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::ZstdLevel;
use parquet::file::properties::WriterProperties;

use crate::error::WarehouseError;

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Zstandard, level 1: small files, fast enough to keep up with the stream.
    #[default]
    Zstd,
    /// Snappy: faster, larger.
    Snappy,
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zstd" => Ok(Self::Zstd),
            "snappy" => Ok(Self::Snappy),
            other => Err(format!("unknown compression `{other}` (expected zstd or snappy)")),
        }
    }
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

    /// Encodes `batches` (all of `schema`) as one Parquet file.
    pub fn encode(&self, schema: SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, WarehouseError> {
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(self.properties()))?;
        for batch in batches {
            writer.write(batch)?;
        }
        Ok(Bytes::from(writer.into_inner()?))
    }
}
