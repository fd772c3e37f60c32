//! Why the warehouse could not do something.

/// A warehouse failure.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The URL is not one the warehouse can use.
    #[error("invalid warehouse URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The storage failed (HDFS down, disk full...). Nothing past the last commit is visible.
    #[error("warehouse storage unavailable: {0}")]
    Storage(#[from] object_store::Error),
    /// Encoding Arrow data as Parquet failed.
    #[error("cannot encode Parquet: {0}")]
    Encode(#[from] parquet::errors::ParquetError),
    /// The rows do not fit the table (a missing partition column, mismatched batches).
    #[error("invalid rows for table `{table}`: {reason}")]
    InvalidRows {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// A decided commit's hidden file is gone and not in place either: another instance's
    /// recovery removed it, so this writer was fenced.
    #[error("the hidden file {0} vanished before it was published (another instance took the partition over)")]
    Vanished(String),
}

impl WarehouseError {
    /// Whether retrying later may succeed (storage unavailable), as opposed to a bug in the data.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Storage(_))
    }
}
