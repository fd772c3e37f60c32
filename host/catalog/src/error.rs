//! Catalog failures.

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Trino could not be reached.
    #[error("cannot reach Trino at {url}: {reason}")]
    Unreachable {
        /// Base URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Trino refused the statement.
    #[error("Trino refused `{statement}`: {message}")]
    Query {
        /// The statement (first line).
        statement: String,
        /// Trino's error message.
        message: String,
    },
    /// The type cannot be written to the catalog.
    #[error("column `{column}` has type {data_type}, which the catalog cannot hold")]
    UnsupportedType {
        /// Column name.
        column: String,
        /// Arrow type.
        data_type: String,
    },
    /// A table's schema changed in a way existing files cannot follow.
    #[error("table `{table}`: incompatible schema change: {reason}")]
    IncompatibleSchema {
        /// Table.
        table: String,
        /// What changed.
        reason: String,
    },
}
