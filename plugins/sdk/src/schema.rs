//! What a plugin declares: its manifest, tables, columns and settings.

/// The type of a column; see `column-type` in `wit/plugin.wit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// true/false.
    Boolean,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// Double.
    Float64,
    /// UTF-8 text.
    String,
    /// Days since 1970-01-01.
    Date,
    /// Microseconds since 1970-01-01 00:00:00, wall clock (no time zone).
    Timestamp,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Lowercase name (`patientid`).
    pub name: String,
    /// Type.
    pub column_type: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// What the column holds.
    pub doc: String,
}

impl Column {
    /// A nullable column.
    pub fn new(name: &str, column_type: ColumnType, doc: &str) -> Self {
        Self { name: name.into(), column_type, nullable: true, doc: doc.into() }
    }

    /// The same column, NOT NULL.
    pub fn required(mut self) -> Self {
        self.nullable = false;
        self
    }
}

/// One table a plugin writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// Table name.
    pub name: String,
    /// What one row is.
    pub doc: String,
    /// Columns in order.
    pub columns: Vec<Column>,
}

/// A configuration key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Key (`drop-unknown`).
    pub name: String,
    /// What it does and which values it takes.
    pub doc: String,
    /// Value when not set.
    pub default: Option<String>,
}

impl Setting {
    /// A setting with a default value.
    pub fn new(name: &str, default: Option<&str>, doc: &str) -> Self {
        Self { name: name.into(), doc: doc.into(), default: default.map(Into::into) }
    }
}

/// Everything a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Plugin name.
    pub name: String,
    /// Semver version.
    pub version: String,
    /// Description.
    pub doc: String,
    /// Accepted MIME types.
    pub content_types: Vec<String>,
    /// Configuration keys.
    pub settings: Vec<Setting>,
    /// Tables written.
    pub tables: Vec<TableSchema>,
}
