//! One connection to the auth database, SQLite (the embedded default) or PostgreSQL (shared by
//! several sluice instances), behind one small interface: statements are written once, with
//! `?N` placeholders (rewritten to `$N` for PostgreSQL), parameters and row values are
//! [`Value`]s. Where the two dialects differ, callers ask [`Conn::is_postgres`].

use crate::error::{Error, Result};

/// A parameter or a column value: text or a 64-bit integer, either possibly NULL (PostgreSQL
/// needs to know which type a NULL parameter has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// TEXT.
    Text(Option<String>),
    /// INTEGER / BIGINT (and booleans, as 0 or 1).
    Int(Option<i64>),
}

impl Value {
    /// The value as an integer (NULL and text read as 0).
    pub fn int(&self) -> i64 {
        match self {
            Self::Int(Some(value)) => *value,
            _ => 0,
        }
    }

    /// The value as text, if it is non-NULL text.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Text(text) => text.clone(),
            Self::Int(_) => None,
        }
    }

    /// The value as text, NULL read as empty.
    pub fn string(&self) -> String {
        self.text().unwrap_or_default()
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::Text(Some(text.to_string()))
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::Text(Some(text))
    }
}

impl From<&String> for Value {
    fn from(text: &String) -> Self {
        Self::Text(Some(text.clone()))
    }
}

impl From<Option<&str>> for Value {
    fn from(text: Option<&str>) -> Self {
        Self::Text(text.map(str::to_string))
    }
}

impl From<Option<String>> for Value {
    fn from(text: Option<String>) -> Self {
        Self::Text(text)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

/// A result row.
pub(crate) type Row = Vec<Value>;

/// A connection to the auth database.
pub(crate) enum Conn {
    /// The embedded SQLite file.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL server; reconnected at the next statement after the connection broke.
    Postgres {
        /// Where and as whom.
        config: Box<postgres::Config>,
        /// How TLS is set up (used as the URL's `sslmode` says).
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        /// The connection, when there is one.
        client: Option<Box<postgres::Client>>,
    },
}

impl Conn {
    /// Connects to the PostgreSQL server `config` names.
    pub fn postgres(config: &postgres::Config, tls: &tokio_postgres_rustls::MakeRustlsConnect) -> Result<Self> {
        let mut conn = Self::Postgres { config: Box::new(config.clone()), tls: tls.clone(), client: None };
        conn.client()?;
        Ok(conn)
    }

    /// The connection settings, for another connection to the same server.
    pub fn postgres_config(&self) -> Option<(&postgres::Config, &tokio_postgres_rustls::MakeRustlsConnect)> {
        match self {
            Self::Postgres { config, tls, .. } => Some((config, tls)),
            Self::Sqlite(_) => None,
        }
    }

    /// Whether this is a PostgreSQL connection.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    fn client(&mut self) -> Result<&mut postgres::Client> {
        let Self::Postgres { config, tls, client } = self else { unreachable!("only called for PostgreSQL") };
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            *client = Some(Box::new(config.connect(tls.clone()).map_err(Error::postgres)?));
        }
        Ok(client.as_mut().expect("just connected"))
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        match self {
            Self::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                Ok(statement.execute(rusqlite::params_from_iter(params.iter().map(sqlite_value)))? as u64)
            }
            Self::Postgres { .. } => {
                let sql = dollar_placeholders(sql);
                let values = postgres_values(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
                let client = self.client()?;
                client.execute(sql.as_str(), &refs).map_err(Error::postgres)
            }
        }
    }

    /// Runs one query; returns every row.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match self {
            Self::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let columns = statement.column_count();
                let rows = statement.query_map(rusqlite::params_from_iter(params.iter().map(sqlite_value)), |row| {
                    (0..columns)
                        .map(|i| {
                            Ok(match row.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(value) => Value::Int(Some(value)),
                                rusqlite::types::ValueRef::Null => Value::Text(None),
                                rusqlite::types::ValueRef::Text(text) => {
                                    Value::Text(Some(String::from_utf8_lossy(text).into_owned()))
                                }
                                rusqlite::types::ValueRef::Real(value) => Value::Int(Some(value as i64)),
                                rusqlite::types::ValueRef::Blob(_) => Value::Text(None),
                            })
                        })
                        .collect::<rusqlite::Result<Row>>()
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<Row>>>()?)
            }
            Self::Postgres { .. } => {
                let sql = dollar_placeholders(sql);
                let values = postgres_values(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
                let client = self.client()?;
                let rows = client.query(sql.as_str(), &refs).map_err(Error::postgres)?;
                rows.iter().map(postgres_row).collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs several statements without parameters.
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        match self {
            Self::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Self::Postgres { .. } => self.client()?.batch_execute(sql).map_err(Error::postgres),
        }
    }

    /// Runs `work` in one transaction: committed when it succeeds, rolled back otherwise.
    pub fn transaction<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.batch("BEGIN")?;
        match work(self) {
            Ok(value) => {
                self.batch("COMMIT")?;
                Ok(value)
            }
            Err(error) => {
                let _ = self.batch("ROLLBACK");
                Err(error)
            }
        }
    }
}

fn sqlite_value(value: &Value) -> rusqlite::types::Value {
    match value {
        Value::Text(Some(text)) => rusqlite::types::Value::Text(text.clone()),
        Value::Int(Some(int)) => rusqlite::types::Value::Integer(*int),
        Value::Text(None) | Value::Int(None) => rusqlite::types::Value::Null,
    }
}

fn postgres_values(params: &[Value]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|value| -> Box<dyn postgres::types::ToSql + Sync> {
            match value {
                Value::Text(text) => Box::new(text.clone()),
                Value::Int(int) => Box::new(*int),
            }
        })
        .collect()
}

fn postgres_row(row: &postgres::Row) -> Result<Row> {
    use postgres::types::Type;
    (0..row.len())
        .map(|i| {
            let kind = row.columns()[i].type_().clone();
            Ok(if kind == Type::INT8 {
                Value::Int(row.try_get(i).map_err(Error::postgres)?)
            } else if kind == Type::INT4 {
                Value::Int(row.try_get::<_, Option<i32>>(i).map_err(Error::postgres)?.map(i64::from))
            } else if kind == Type::BOOL {
                Value::Int(row.try_get::<_, Option<bool>>(i).map_err(Error::postgres)?.map(i64::from))
            } else {
                Value::Text(row.try_get(i).map_err(Error::postgres)?)
            })
        })
        .collect()
}

/// `?1` placeholders as PostgreSQL's `$1` (statements here have no `?` elsewhere).
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            dollar_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = $12"
        );
    }

    #[test]
    fn sqlite_statements_take_and_give_values() {
        let mut conn = Conn::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        conn.batch("CREATE TABLE t (name TEXT, n INTEGER)").unwrap();
        conn.execute("INSERT INTO t VALUES (?1, ?2)", &["a".into(), 7.into()]).unwrap();
        conn.execute("INSERT INTO t VALUES (?1, ?2)", &[Value::Text(None), Value::Int(None)]).unwrap();
        let rows = conn.query("SELECT name, n FROM t ORDER BY n IS NULL, n", &[]).unwrap();
        assert_eq!(rows, vec![vec![Value::from("a"), Value::from(7)], vec![Value::Text(None), Value::Text(None)]]);
        let failed = conn.transaction(|tx| {
            tx.execute("DELETE FROM t", &[])?;
            Err::<(), _>(Error::NoSuchUser("x".into()))
        });
        assert!(failed.is_err());
        assert_eq!(conn.query("SELECT count(*) FROM t", &[]).unwrap(), vec![vec![Value::from(2)]], "rolled back");
    }
}
