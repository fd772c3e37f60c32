//! What a plugin declares about itself: its manifest, tables, columns and settings.

use std::collections::HashSet;
use std::fmt;

/// The type of a column; see `column-type` in `wit/plugin.wit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "lowercase"))]
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
    /// A point in time: microseconds since 1970-01-01 00:00:00 UTC (contract 0.2.0).
    Instant,
}

impl ColumnType {
    /// Every type, in the contract's order.
    pub const ALL: [ColumnType; 8] = [
        Self::Boolean,
        Self::Int32,
        Self::Int64,
        Self::Float64,
        Self::String,
        Self::Date,
        Self::Timestamp,
        Self::Instant,
    ];

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
            Self::Instant => "instant",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Column {
    /// Lowercase name (`patientid`).
    pub name: String,
    /// Type.
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TableSchema {
    /// Table name.
    pub name: String,
    /// What one row is.
    pub doc: String,
    /// Columns in order.
    pub columns: Vec<Column>,
}

impl TableSchema {
    /// Why rows of `self` and of `other` (two plugins' declarations of one table) cannot share
    /// the table's files, if they cannot: either may write first, so a column both declare must
    /// have one type, and a column only one declares must allow NULL (the other's
    /// rows leave it empty). The stream applies the same rule to files as they are written.
    pub fn conflict_with(&self, other: &TableSchema) -> Option<String> {
        for column in &self.columns {
            match other.columns.iter().find(|c| c.name == column.name) {
                Some(theirs) if theirs.column_type != column.column_type => {
                    return Some(format!(
                        "column `{}` is {} here and {} there",
                        column.name, column.column_type, theirs.column_type
                    ));
                }
                Some(_) => {}
                None if !column.nullable => {
                    return Some(format!("required column `{}` is missing there", column.name));
                }
                None => {}
            }
        }
        other
            .columns
            .iter()
            .find(|c| !c.nullable && !self.columns.iter().any(|mine| mine.name == c.name))
            .map(|c| format!("required column `{}` is missing here", c.name))
    }
}

/// One configuration key a plugin understands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Manifest {
    /// Plugin name.
    pub name: String,
    /// Semver version.
    pub version: String,
    /// Description.
    pub doc: String,
    /// Accepted content types (MIME essence, lowercase, once [`checked`](Self::checked)).
    pub content_types: Vec<String>,
    /// Configuration keys.
    pub settings: Vec<Setting>,
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

    /// Whether the plugin accepts this content type (a MIME essence) under this very name.
    pub fn accepts(&self, content_type: &str) -> bool {
        self.content_types.iter().any(|c| c == content_type)
    }

    /// The declared content type the plugin reads a body labelled `essence` as: `essence`
    /// itself when declared, else the declared name of the same media type (`application/csv`
    /// is read as `text/csv`, `application/jsonl` as NDJSON, `application/fhir+json` as JSON);
    /// `None` when the plugin does not read it.
    pub fn reads(&self, essence: &str) -> Option<&str> {
        let declared = |name: &str| self.content_types.iter().find(|c| *c == name).map(String::as_str);
        declared(essence).or_else(|| crate::mime::same_media_type(essence).iter().find_map(|name| declared(name)))
    }

    /// The manifest if it follows the contract's rules, its content types reduced to their
    /// essence; else why not. Names are lowercase identifiers (safe as SQL identifiers and path
    /// segments), the version is semver, there is at least one content type, table and column,
    /// nothing is declared twice, and no column takes the provenance prefix `ingest_`.
    pub fn checked(mut self) -> Result<Self, String> {
        check_name("plugin name", &self.name, true)?;
        check_version(&self.version)?;
        if self.content_types.is_empty() {
            return Err("it accepts no content type".into());
        }
        for content_type in &mut self.content_types {
            let essence = crate::essence(content_type);
            if !essence.contains('/') || essence.contains(char::is_whitespace) {
                return Err(format!("`{content_type}` is not a MIME type"));
            }
            *content_type = essence;
        }
        if self.tables.is_empty() {
            return Err("it declares no table".into());
        }
        let mut table_names = HashSet::new();
        for table in &self.tables {
            check_name("table name", &table.name, false)?;
            if !table_names.insert(table.name.as_str()) {
                return Err(format!("table `{}` is declared twice", table.name));
            }
            if table.columns.is_empty() {
                return Err(format!("table `{}` has no column", table.name));
            }
            let mut column_names = HashSet::new();
            for column in &table.columns {
                check_name("column name", &column.name, false)?;
                if column.name.starts_with("ingest_") {
                    return Err(format!(
                        "column `{}.{}` uses the prefix `ingest_`, reserved for provenance columns",
                        table.name, column.name
                    ));
                }
                if !column_names.insert(column.name.as_str()) {
                    return Err(format!("column `{}.{}` is declared twice", table.name, column.name));
                }
            }
        }
        let mut setting_names = HashSet::new();
        for setting in &self.settings {
            check_name("setting name", &setting.name, true)?;
            if !setting_names.insert(setting.name.as_str()) {
                return Err(format!("setting `{}` is declared twice", setting.name));
            }
        }
        Ok(self)
    }
}

/// Whether `name` may name a plugin (and so a source): why not, if it may not.
pub fn check_plugin_name(name: &str) -> Result<(), String> {
    check_name("plugin name", name, true)
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

    fn manifest() -> Manifest {
        Manifest {
            name: "vitals".into(),
            version: "0.1.0".into(),
            doc: String::new(),
            content_types: vec!["Text/CSV; charset=utf-8".into()],
            settings: vec![Setting::new("drop-unknown", Some("false"), "")],
            tables: vec![TableSchema {
                name: "vitals".into(),
                doc: String::new(),
                columns: vec![Column::new("patientid", ColumnType::String, "").required()],
            }],
        }
    }

    #[test]
    fn two_declarations_of_one_table_agree_on_types_and_leave_the_others_columns_nullable() {
        let table = |columns: Vec<Column>| TableSchema { name: "vitals".into(), doc: String::new(), columns };
        let mine = table(vec![
            Column::new("patientid", ColumnType::String, "").required(),
            Column::new("pulse", ColumnType::Int32, ""),
        ]);
        let same_with_more = table(vec![
            Column::new("patientid", ColumnType::String, ""),
            Column::new("pulse", ColumnType::Int32, "").required(),
            Column::new("note", ColumnType::String, ""),
        ]);
        assert_eq!(mine.conflict_with(&same_with_more), None);
        assert_eq!(same_with_more.conflict_with(&mine), None);

        let retyped = table(vec![
            Column::new("patientid", ColumnType::String, "").required(),
            Column::new("pulse", ColumnType::Float64, ""),
        ]);
        assert_eq!(mine.conflict_with(&retyped).as_deref(), Some("column `pulse` is int32 here and float64 there"));

        let without_the_required = table(vec![Column::new("pulse", ColumnType::Int32, "")]);
        assert_eq!(
            mine.conflict_with(&without_the_required).as_deref(),
            Some("required column `patientid` is missing there")
        );
        assert_eq!(
            without_the_required.conflict_with(&mine).as_deref(),
            Some("required column `patientid` is missing here")
        );
    }

    #[test]
    fn a_body_is_read_as_the_declared_name_of_its_media_type() {
        let mut manifest = manifest();
        manifest.content_types =
            vec!["application/ndjson".into(), "application/json".into(), "text/csv".into(), "application/jsonl".into()];
        assert_eq!(manifest.reads("text/csv"), Some("text/csv"));
        assert_eq!(manifest.reads("application/csv"), Some("text/csv"));
        assert_eq!(manifest.reads("application/x-ndjson"), Some("application/ndjson"), "the declared name");
        assert_eq!(manifest.reads("application/jsonl"), Some("application/jsonl"), "declared as sent: kept");
        assert_eq!(manifest.reads("application/fhir+json"), Some("application/json"));
        assert_eq!(manifest.reads("text/tab-separated-values"), None);
        assert_eq!(manifest.reads("text/tsv"), None);
        assert_eq!(manifest.reads("application/xml"), None);
        assert!(!manifest.accepts("application/csv"), "accepts is the declared name only");
    }

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

    #[test]
    fn a_checked_manifest_names_its_content_types_by_essence() {
        let checked = manifest().checked().unwrap();
        assert_eq!(checked.content_types, ["text/csv"]);
        assert!(checked.accepts("text/csv"));
        assert_eq!(checked.id(), "vitals@0.1.0");
    }

    #[test]
    fn a_manifest_breaking_a_rule_is_refused_with_the_rule() {
        let mut twice = manifest();
        twice.tables[0].columns.push(Column::new("patientid", ColumnType::Int32, ""));
        assert_eq!(twice.checked().unwrap_err(), "column `vitals.patientid` is declared twice");
        let mut reserved = manifest();
        reserved.tables[0].columns[0].name = "ingest_user".into();
        assert_eq!(
            reserved.checked().unwrap_err(),
            "column `vitals.ingest_user` uses the prefix `ingest_`, reserved for provenance columns"
        );
        let mut no_type = manifest();
        no_type.content_types = vec!["csv".into()];
        assert_eq!(no_type.checked().unwrap_err(), "`csv` is not a MIME type");
    }
}
