//! Key/value settings handed to `configure`, checked against the declared keys.

use std::collections::BTreeMap;

use sluice_contract::Setting;

/// A source's settings, with defaults filled in. Unknown keys were refused when it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Checks `given` against `declared` and fills in defaults.
    pub fn new(declared: &[Setting], given: &[(String, String)]) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        for setting in declared {
            if let Some(default) = &setting.default {
                values.insert(setting.name.clone(), default.clone());
            }
        }
        for (key, value) in given {
            if !declared.iter().any(|s| &s.name == key) {
                let known: Vec<&str> = declared.iter().map(|s| s.name.as_str()).collect();
                return Err(format!("unknown setting `{key}` (known: {})", known.join(", ")));
            }
            values.insert(key.clone(), value.clone());
        }
        Ok(Self { values })
    }

    /// The value of `key`, if set or defaulted.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// `key` as a boolean: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`; unset is `false`.
    pub fn flag(&self, key: &str) -> Result<bool, String> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None => Ok(false),
            Some("true" | "yes" | "on" | "1") => Ok(true),
            Some("false" | "no" | "off" | "0") => Ok(false),
            Some(other) => Err(format!("setting `{key}` must be true or false, not `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> Vec<Setting> {
        vec![Setting::new("drop-unknown", Some("false"), "drop")]
    }

    #[test]
    fn defaults_apply_and_unknown_keys_are_refused() {
        let settings = Settings::new(&declared(), &[]).unwrap();
        assert_eq!(settings.flag("drop-unknown"), Ok(false));
        let settings = Settings::new(&declared(), &[("drop-unknown".into(), "Yes".into())]).unwrap();
        assert_eq!(settings.flag("drop-unknown"), Ok(true));
        assert_eq!(
            Settings::new(&declared(), &[("colour".into(), "red".into())]).unwrap_err(),
            "unknown setting `colour` (known: drop-unknown)"
        );
        let settings = Settings::new(&declared(), &[("drop-unknown".into(), "maybe".into())]).unwrap();
        assert_eq!(
            settings.flag("drop-unknown").unwrap_err(),
            "setting `drop-unknown` must be true or false, not `maybe`"
        );
    }
}
