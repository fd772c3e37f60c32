//! `[catalog]`: the Trino sluice keeps in step with the warehouse.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[catalog]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Trino coordinator, e.g. `http://trino:8080`; empty: sluice does not touch the catalog.
    pub trino_url: String,
    /// Trino user sluice runs catalog statements as.
    pub user: String,
    /// Trino catalog of the Hive connector.
    pub catalog: String,
    /// Schema the tables go to.
    pub schema: String,
    /// How often tables of newly loaded plugins are looked for (at least a second).
    #[serde(with = "humantime_serde")]
    pub rescan: Duration,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            trino_url: String::new(),
            user: "sluice".into(),
            catalog: "hive".into(),
            schema: "sluice".into(),
            rescan: Duration::from_secs(30),
        }
    }
}

impl CatalogConfig {
    /// Checks what the types cannot: a rescan period of at least a second.
    pub fn check(&self) -> Result<(), sluice_config::ValueError> {
        sluice_config::check("catalog", [("rescan", "at least 1s", self.rescan < Duration::from_secs(1))])
    }

    /// Whether sluice keeps a catalog at all.
    pub fn enabled(&self) -> bool {
        !self.trino_url.is_empty()
    }
}
