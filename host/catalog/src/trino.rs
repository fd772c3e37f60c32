//! A minimal client of Trino's HTTP protocol (`POST /v1/statement`, then follow `nextUri`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::CatalogError;

/// Runs SQL statements on a Trino coordinator.
#[derive(Debug, Clone)]
pub struct TrinoClient {
    base: String,
    user: String,
    session: Option<(String, String)>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryResults {
    next_uri: Option<String>,
    data: Option<Vec<Vec<Value>>>,
    error: Option<QueryError>,
}

#[derive(Deserialize)]
struct QueryError {
    message: String,
}

impl TrinoClient {
    /// A client of the coordinator at `base` (`http://host:8080`), querying as `user`.
    pub fn new(base: &str, user: &str) -> Self {
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("a plain HTTP client builds");
        Self { base: base.trim_end_matches('/').to_string(), user: user.to_string(), session: None, http }
    }

    /// The same client with a default catalog and schema, so statements may name tables alone.
    pub fn with_schema(mut self, catalog: &str, schema: &str) -> Self {
        self.session = Some((catalog.to_string(), schema.to_string()));
        self
    }

    /// The coordinator's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Runs `sql` to completion and returns its rows.
    pub async fn execute(&self, sql: &str) -> Result<Vec<Vec<Value>>, CatalogError> {
        // Neither the URL's password nor reqwest's copy of the URL reach the message (it is logged).
        let unreachable = |e: reqwest::Error| CatalogError::Unreachable {
            url: sluice_config::without_password(&self.base),
            reason: e.without_url().to_string(),
        };
        let statement = sql.lines().next().unwrap_or_default().to_string();
        let mut request = self.http.post(format!("{}/v1/statement", self.base)).header("X-Trino-User", &self.user);
        if let Some((catalog, schema)) = &self.session {
            request = request.header("X-Trino-Catalog", catalog).header("X-Trino-Schema", schema);
        }
        let mut response = request.body(sql.to_string()).send().await.map_err(unreachable)?;
        let mut rows = Vec::new();
        loop {
            let status = response.status();
            if status.as_u16() == 503 || status.as_u16() == 429 {
                // Busy: the protocol says to retry the same URI.
                let uri = response.url().clone();
                tokio::time::sleep(Duration::from_millis(100)).await;
                response = self.http.get(uri).header("X-Trino-User", &self.user).send().await.map_err(unreachable)?;
                continue;
            }
            if !status.is_success() {
                let message = format!("HTTP {status}: {}", response.text().await.unwrap_or_default());
                return Err(CatalogError::Query { statement, message });
            }
            let results: QueryResults = response.json().await.map_err(unreachable)?;
            if let Some(error) = results.error {
                return Err(CatalogError::Query { statement, message: error.message });
            }
            rows.extend(results.data.unwrap_or_default());
            let Some(next) = results.next_uri else { return Ok(rows) };
            response = self.http.get(next).header("X-Trino-User", &self.user).send().await.map_err(unreachable)?;
        }
    }
}
