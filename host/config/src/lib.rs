//! What every component's configuration section shares. Each component owns its section (a
//! serde struct with its defaults and documentation beside the component); the values its
//! types allow but that cannot work (a zero limit that refuses everything, a protection turned
//! off unseen) it rules out with [`check`], so that every such error reads the same way:
//! `log.partitions must be from 1 to 1024`.

/// `url` with every password in it replaced by `***`, for logs, banners and errors: the user
/// info's (`hdfs://etl:***@namenode:8020`, also when the password holds an unencoded `/`), a
/// `password=` query parameter (`postgres://h/db?password=***`) and a libpq keyword setting
/// (`host=h password=***`). A URL without one is returned as it is.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return keyword_password_hidden(url) };
    let mut authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if !rest[..authority_end].contains('@')
        && !looks_like_host_and_port(&rest[..authority_end])
        && let Some(at) = rest.rfind('@')
    {
        // `user:pa/ss@host`: what follows the colon is no port, so the last `@` ends a password
        // that holds a `/`, `?` or `#` (hiding too much beats showing any of it).
        authority_end = at + 1 + rest[at + 1..].find(['/', '?', '#']).unwrap_or(rest.len() - at - 1);
    }
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    format!("{scheme}://{authority}{}", query_password_hidden(path))
}

/// Whether `authority` (no `@` in it) is a host with at most a numeric port.
fn looks_like_host_and_port(authority: &str) -> bool {
    authority.starts_with('[')
        || authority.rsplit_once(':').is_none_or(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
}

/// `path` (what follows a URL's authority) with the value of a `password=` query parameter
/// replaced by `***`.
fn query_password_hidden(path: &str) -> String {
    let Some((before, query)) = path.split_once('?') else { return path.to_string() };
    let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
    format!("{before}?{}{fragment}", query.join("&"))
}

/// A libpq keyword setting (`host=h user=u password='x y'`) with the password's value replaced
/// by `***`; any other text is returned as it is.
fn keyword_password_hidden(settings: &str) -> String {
    let mut hidden = String::with_capacity(settings.len());
    let mut rest = settings;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        hidden.push_str(&rest[..start]);
        rest = &rest[start..];
        let key_end = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
        let key = &rest[..key_end];
        let after_key = rest[key_end..].trim_start();
        let Some(value) = after_key.strip_prefix('=') else {
            hidden.push_str(key);
            rest = &rest[key_end..];
            continue;
        };
        let value = value.trim_start();
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            let close = quoted.char_indices().find(|&(_, c)| {
                let closes = c == '\'' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            });
            close.map_or(value.len(), |(at, _)| at + 2)
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        let setting_len = rest.len() - value.len() + value_len;
        if key == "password" {
            hidden.push_str("password=***");
        } else {
            hidden.push_str(&rest[..setting_len]);
        }
        rest = &rest[setting_len..];
    }
    hidden.push_str(rest);
    hidden
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
        assert_eq!(without_password("postgres://u@db:5432/auth"), "postgres://u@db:5432/auth");
        assert_eq!(without_password("http://[::1]:8080/x"), "http://[::1]:8080/x");
    }

    #[test]
    fn a_password_holding_a_slash_is_hidden_whole() {
        assert_eq!(without_password("postgres://etl:pa/ss?w@db:5432/auth"), "postgres://etl:***@db:5432/auth");
        assert_eq!(without_password("postgres://etl:pa#ss@db/auth"), "postgres://etl:***@db/auth");
    }

    #[test]
    fn password_query_parameters_are_hidden() {
        assert_eq!(
            without_password("postgres://db/auth?user=etl&password=s3cret&sslmode=require"),
            "postgres://db/auth?user=etl&password=***&sslmode=require"
        );
        assert_eq!(without_password("postgres://db/auth?Password=s3cret#x"), "postgres://db/auth?Password=***#x");
    }

    #[test]
    fn keyword_settings_hide_their_password() {
        assert_eq!(
            without_password("host=db user=etl password=s3cret dbname=auth"),
            "host=db user=etl password=*** dbname=auth"
        );
        assert_eq!(without_password("host=db password = 'a \\' b' port=5432"), "host=db password=*** port=5432");
        assert_eq!(without_password("password='unterminated"), "password=***");
        assert_eq!(without_password("/data/wh"), "/data/wh");
    }

    #[test]
    fn the_first_broken_rule_is_the_error() {
        assert_eq!(check("log", [("partitions", "at least 1", false)]), Ok(()));
        let error = check("log", [("a", "x", false), ("partitions", "at least 1", true), ("b", "y", true)]);
        assert_eq!(error.unwrap_err().to_string(), "log.partitions must be at least 1");
    }
}
