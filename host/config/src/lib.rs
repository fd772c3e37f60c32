//! What every component's configuration section shares. Each component owns its section (a
//! serde struct with its defaults and documentation beside the component); the values its
//! types allow but that cannot work (a zero limit that refuses everything, a protection turned
//! off unseen) it rules out with [`check`], so that every such error reads the same way:
//! `log.partitions must be from 1 to 1024`.

/// `url` with the password of its user info replaced by `***` (`hdfs://etl:***@namenode:8020`),
/// for logs and banners; a URL without one is returned as it is.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((user_info, host)) = authority.rsplit_once('@') else { return url.to_string() };
    match user_info.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_string(),
    }
}

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
    fn passwords_in_urls_are_hidden_and_the_rest_kept() {
        assert_eq!(without_password("http://admin:s3cret@trino:8080/x?a=b@c"), "http://admin:***@trino:8080/x?a=b@c");
        assert_eq!(without_password("hdfs://etl:p@ss@namenode:8020/wh"), "hdfs://etl:***@namenode:8020/wh");
        assert_eq!(without_password("hdfs://namenode:8020/wh"), "hdfs://namenode:8020/wh");
        assert_eq!(without_password("http://trino:8080/a@b"), "http://trino:8080/a@b");
        assert_eq!(without_password("file:///data/wh"), "file:///data/wh");
    }

    #[test]
    fn the_first_broken_rule_is_the_error() {
        assert_eq!(check("log", [("partitions", "at least 1", false)]), Ok(()));
        let error = check("log", [("a", "x", false), ("partitions", "at least 1", true), ("b", "y", true)]);
        assert_eq!(error.unwrap_err().to_string(), "log.partitions must be at least 1");
    }
}
