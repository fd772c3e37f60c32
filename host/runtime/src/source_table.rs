//! Sources: named bindings of a plugin and its settings. By default every loaded plugin is also
//! a source of the same name with default settings.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

use crate::registry::PluginRegistry;
use crate::source::{Source, SourceError};

/// `[sources.NAME]`: a source beyond the default one per plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceBinding {
    /// The plugin it runs.
    pub plugin: String,
    /// Its settings, by the names the plugin's manifest declares.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// The sources the API serves, resolved against the plugin registry at each request so that
/// plugins dropped in or removed take effect without a restart.
#[derive(Clone)]
pub struct SourceTable {
    registry: PluginRegistry,
    bindings: Arc<HashMap<String, SourceBinding>>,
    live: Arc<RwLock<HashMap<String, Arc<Source>>>>,
}

impl SourceTable {
    /// Sources from `bindings` plus one per loaded plugin not shadowed by a binding. Each binding
    /// is checked now: an unknown plugin or bad settings is an error here, not on first request.
    pub fn new(
        registry: PluginRegistry,
        bindings: impl IntoIterator<Item = (String, SourceBinding)>,
    ) -> Result<Self, SourceError> {
        let table = Self { registry, bindings: Arc::new(bindings.into_iter().collect()), live: Arc::default() };
        for name in table.bindings.keys() {
            table.build(name)?;
        }
        Ok(table)
    }

    fn build(&self, name: &str) -> Result<Arc<Source>, SourceError> {
        let (plugin, settings) = match self.bindings.get(name) {
            Some(binding) => (binding.plugin.as_str(), binding.settings.clone().into_iter().collect()),
            None => (name, Vec::new()),
        };
        let source = Arc::new(Source::from_registry(&self.registry, plugin, settings)?);
        self.live.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), source.clone());
        Ok(source)
    }

    /// The source `name`, if its plugin is loaded.
    pub fn get(&self, name: &str) -> Option<Arc<Source>> {
        let plugin_name = self.bindings.get(name).map_or(name, |b| b.plugin.as_str());
        self.registry.get(plugin_name)?;
        if let Some(source) = self.live.read().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Some(source.clone());
        }
        match self.build(name) {
            Ok(source) => Some(source),
            Err(error) => {
                tracing::warn!(source = name, %error, "source unavailable");
                None
            }
        }
    }

    /// Names of every source currently served, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.bindings.keys().cloned().collect();
        for plugin in self.registry.list() {
            let name = &plugin.manifest().name;
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names.retain(|n| self.bindings.get(n).is_none_or(|b| self.registry.get(&b.plugin).is_some()));
        names.sort();
        names
    }

    /// The plugin registry.
    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }
}
