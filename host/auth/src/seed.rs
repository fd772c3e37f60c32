//! Importing the seed's auth database: tables `api_users`, `api_list` and `map_users_api` with
//! plaintext passwords. Each password is hashed; each mapping becomes a grant.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::store::AuthStore;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedImport {
    /// Users created.
    pub users: Vec<String>,
    /// Users skipped because they exist already.
    pub skipped: Vec<String>,
    /// Grants created (user, source).
    pub grants: Vec<(String, String)>,
}

/// Columns of `table`, lowercased.
fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut statement = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let names: Vec<String> = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
    if names.is_empty() {
        return Err(Error::Seed(format!("table `{table}` is missing")));
    }
    Ok(names.into_iter().map(|n| n.to_ascii_lowercase()).collect())
}

/// The first column whose name contains one of `hints`.
fn pick(columns: &[String], table: &str, hints: &[&str]) -> Result<String> {
    hints
        .iter()
        .find_map(|hint| columns.iter().find(|c| c.contains(hint)))
        .cloned()
        .ok_or_else(|| Error::Seed(format!("table `{table}` has no column like {}", hints.join("/"))))
}

/// Maps a seed API name (`api_admissions`, `/api_patient`...) to a sluice source name.
pub fn source_for_api(api: &str) -> String {
    let name = api.trim().trim_start_matches('/').to_ascii_lowercase();
    let name = name.strip_prefix("api_").unwrap_or(&name);
    match name {
        "patient" => "patients".to_string(),
        "admission" => "admissions".to_string(),
        "lab_result" | "labresults" => "lab_results".to_string(),
        other => other.to_string(),
    }
}

impl AuthStore {
    /// Imports users and grants from a seed database. Existing users are left as they are.
    pub fn import_seed(&self, path: &Path) -> Result<SeedImport> {
        let seed = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let user_columns = columns(&seed, "api_users")?;
        let user_id = pick(&user_columns, "api_users", &["id"])?;
        let user_name = pick(&user_columns, "api_users", &["username", "user_name", "name", "user"])?;
        let user_password = pick(&user_columns, "api_users", &["password", "pass", "pwd"])?;
        let api_columns = columns(&seed, "api_list")?;
        let api_id = pick(&api_columns, "api_list", &["id"])?;
        let api_name = pick(&api_columns, "api_list", &["api_name", "name", "endpoint", "route", "api"])?;
        let map_columns = columns(&seed, "map_users_api")?;
        let map_user = pick(&map_columns, "map_users_api", &["user"])?;
        let map_api = pick(&map_columns, "map_users_api", &["api"])?;

        let mut statement = seed.prepare(&format!("SELECT {user_id}, {user_name}, {user_password} FROM api_users"))?;
        let users: Vec<(i64, String, String)> =
            statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
        let mut statement = seed.prepare(&format!(
            "SELECT m.{map_user}, a.{api_name} FROM map_users_api m JOIN api_list a ON a.{api_id} = m.{map_api}"
        ))?;
        let mappings: Vec<(i64, String)> =
            statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;

        let mut report = SeedImport::default();
        for (id, name, password) in &users {
            let name = name.trim().to_ascii_lowercase();
            match self.add_user(&name, password) {
                Ok(()) => report.users.push(name.clone()),
                Err(Error::UserExists(_)) => report.skipped.push(name.clone()),
                Err(error) => return Err(Error::Seed(format!("user `{name}`: {error}"))),
            }
            for (_, api) in mappings.iter().filter(|(user, _)| user == id) {
                let source = source_for_api(api);
                self.grant(&name, &source)?;
                report.grants.push((name.clone(), source));
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_api_names_map_to_sources() {
        assert_eq!(source_for_api("api_admissions"), "admissions");
        assert_eq!(source_for_api("/api_patient"), "patients");
        assert_eq!(source_for_api("api_lab_results"), "lab_results");
    }
}
