//! The validated, host-side form of a plugin's manifest.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use crate::bindings::types;

/// The type of a column; see `column-type` in `wit/plugin.wit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
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
    /// Microseconds since 1970-01-01 00:00:00, wall clock.
    Timestamp,
}

impl ColumnType {
    /// The contract's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Float64 => "float64",
            Self::String => "string",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<types::ColumnType> for ColumnType {
    fn from(value: types::ColumnType) -> Self {
        match value {
            types::ColumnType::Boolean => Self::Boolean,
            types::ColumnType::Int32 => Self::Int32,
            types::ColumnType::Int64 => Self::Int64,
            types::ColumnType::Float64 => Self::Float64,
            types::ColumnType::String => Self::String,
            types::ColumnType::Date => Self::Date,
            types::ColumnType::Timestamp => Self::Timestamp,
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// What the column holds.
    pub doc: String,
}

/// One table a plugin writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSchema {
    /// Table name.
    pub name: String,
    /// What one row is.
    pub doc: String,
    /// Columns in order.
    pub columns: Vec<ColumnSchema>,
}

/// One configuration key a plugin understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingSchema {
    /// Key.
    pub name: String,
    /// What it does.
    pub doc: String,
    /// Value when unset.
    pub default: Option<String>,
}

/// What a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Plugin name.
    pub name: String,
    /// Plugin version (semver).
    pub version: String,
    /// Description.
    pub doc: String,
    /// Accepted content types (MIME essence, lowercase).
    pub content_types: Vec<String>,
    /// Configuration keys.
    pub settings: Vec<SettingSchema>,
    /// Tables written.
    pub tables: Vec<TableSchema>,
}

impl Manifest {
    /// `name@version`, the way errors and provenance name a plugin.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The schema of table `name`.
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Whether the plugin accepts this content type (MIME essence).
    pub fn accepts(&self, content_type: &str) -> bool {
        self.content_types.iter().any(|c| c == content_type)
    }

    /// Converts and validates the manifest a plugin returned.
    pub(crate) fn from_wit(manifest: types::Manifest) -> Result<Self, String> {
        check_name("plugin name", &manifest.name, true)?;
        check_version(&manifest.version)?;
        if manifest.content_types.is_empty() {
            return Err("it accepts no content type".into());
        }
        let content_types = manifest
            .content_types
            .into_iter()
            .map(|c| {
                let essence = crate::batch::essence(&c);
                if essence.contains('/') && !essence.contains(char::is_whitespace) {
                    Ok(essence)
                } else {
                    Err(format!("`{c}` is not a MIME type"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if manifest.tables.is_empty() {
            return Err("it declares no table".into());
        }
        let mut table_names = HashSet::new();
        let mut tables = Vec::with_capacity(manifest.tables.len());
        for table in manifest.tables {
            check_name("table name", &table.name, false)?;
            if !table_names.insert(table.name.clone()) {
                return Err(format!("table `{}` is declared twice", table.name));
            }
            if table.columns.is_empty() {
                return Err(format!("table `{}` has no column", table.name));
            }
            let mut column_names = HashSet::new();
            let mut columns = Vec::with_capacity(table.columns.len());
            for column in table.columns {
                check_name("column name", &column.name, false)?;
                if column.name.starts_with("ingest_") {
                    return Err(format!(
                        "column `{}.{}` uses the prefix `ingest_`, reserved for provenance columns",
                        table.name, column.name
                    ));
                }
                if !column_names.insert(column.name.clone()) {
                    return Err(format!("column `{}.{}` is declared twice", table.name, column.name));
                }
                columns.push(ColumnSchema {
                    name: column.name,
                    column_type: column.type_.into(),
                    nullable: column.nullable,
                    doc: column.doc,
                });
            }
            tables.push(TableSchema { name: table.name, doc: table.doc, columns });
        }
        let mut setting_names = HashSet::new();
        let mut settings = Vec::with_capacity(manifest.settings.len());
        for setting in manifest.settings {
            check_name("setting name", &setting.name, true)?;
            if !setting_names.insert(setting.name.clone()) {
                return Err(format!("setting `{}` is declared twice", setting.name));
            }
            settings.push(SettingSchema { name: setting.name, doc: setting.doc, default: setting.default_value });
        }
        Ok(Self { name: manifest.name, version: manifest.version, doc: manifest.doc, content_types, settings, tables })
    }
}

/// Names are lowercase ASCII identifiers so they are safe as SQL identifiers and path segments.
fn check_name(what: &str, name: &str, allow_dash: bool) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (allow_dash && c == '-'));
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        let allowed = if allow_dash { ", `_` and `-`" } else { " and `_`" };
        Err(format!(
            "{what} `{}` must start with a lowercase letter and hold only lowercase letters, digits{allowed} (at most 64)",
            name.escape_debug()
        ))
    }
}

fn check_version(version: &str) -> Result<(), String> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        Ok(())
    } else {
        Err(format!("version `{}` is not semver (MAJOR.MINOR.PATCH)", version.escape_debug()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_unsafe_in_sql_or_paths_are_refused() {
        assert!(check_name("table name", "lab_results", false).is_ok());
        for bad in ["", "Lab", "1abc", "a/b", "a;drop", "a-b", "a b"] {
            assert!(check_name("table name", bad, false).is_err(), "{bad}");
        }
        assert!(check_name("plugin name", "hl7-adt", true).is_ok());
    }

    #[test]
    fn versions_must_be_semver() {
        assert!(check_version("1.2.3").is_ok());
        assert!(check_version("0.1.0-rc.1").is_ok());
        assert_eq!(check_version("1.2").unwrap_err(), "version `1.2` is not semver (MAJOR.MINOR.PATCH)");
    }
}
