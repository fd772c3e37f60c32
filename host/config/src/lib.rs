//! What every component's configuration section shares. Each component owns its section (a
//! serde struct with its defaults and documentation beside the component); the values its
//! types allow but that cannot work (a zero limit that refuses everything, a protection turned
//! off unseen) it rules out with [`check`], so that every such error reads the same way:
//! `log.partitions must be from 1 to 1024`.

/// A configuration value that cannot work.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{section}.{key} must be {rule}")]
pub struct ValueError {
    /// The section (`log`, `plugins`, ...).
    pub section: &'static str,
    /// The key within it.
    pub key: &'static str,
    /// What the value must be (`at least 1s`).
    pub rule: &'static str,
}

/// The first of `rules` — each a key, what its value must be, and whether the value breaks
/// that — that is broken, as the error of `section`.
pub fn check(
    section: &'static str,
    rules: impl IntoIterator<Item = (&'static str, &'static str, bool)>,
) -> Result<(), ValueError> {
    match rules.into_iter().find(|(_, _, broken)| *broken) {
        Some((key, rule, _)) => Err(ValueError { section, key, rule }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_broken_rule_is_the_error() {
        assert_eq!(check("log", [("partitions", "at least 1", false)]), Ok(()));
        let error = check("log", [("a", "x", false), ("partitions", "at least 1", true), ("b", "y", true)]);
        assert_eq!(error.unwrap_err().to_string(), "log.partitions must be at least 1");
    }
}
