//! Content types as plugins declare and batches carry them.

/// The MIME essence of a content type: `Text/CSV; charset=utf-8` → `text/csv` (no parameters,
/// no surrounding space, lowercase). Manifests, batches and the API compare content types by
/// their essence only.
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Media types that senders name in more than one way, the usual name first. A plugin that
/// reads one name of a group reads them all ([`Manifest::reads`](crate::Manifest::reads)):
/// pandas, Excel add-ins and HTTP libraries label CSV `application/csv`, log shippers label
/// JSON Lines `application/jsonl`, older frameworks label JSON `text/json`.
const SAME_MEDIA_TYPE: &[&[&str]] = &[
    &["application/json", "text/json", "application/x-json"],
    &[
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonl",
        "application/jsonlines",
        "application/x-jsonlines",
        "application/json-lines",
        "application/x-ldjson",
        "text/jsonl",
        "text/x-ndjson",
    ],
    &[
        "text/csv",
        "application/csv",
        "application/x-csv",
        "text/x-csv",
        "text/comma-separated-values",
        "text/x-comma-separated-values",
    ],
    &["text/tab-separated-values", "text/tsv", "text/x-tsv", "application/tsv"],
];

/// The other names of the media type `essence` (its group in the table above, itself
/// included), in the order a plugin's declared names are tried. A JSON type named by its
/// structured syntax suffix (RFC 6839: `application/fhir+json`, `application/vnd.api+json`)
/// is JSON. Empty when sluice knows no other name for it.
pub(crate) fn same_media_type(essence: &str) -> &'static [&'static str] {
    if let Some(group) = SAME_MEDIA_TYPE.iter().find(|group| group.contains(&essence)) {
        return group;
    }
    match essence.strip_prefix("application/") {
        Some(subtype) if subtype.len() > "+json".len() && subtype.ends_with("+json") => SAME_MEDIA_TYPE[0],
        _ => &[],
    }
}

/// The value of the parameter `name` of a content type (RFC 9110: names compare without case,
/// a value may be quoted, with `\\` escapes): `parameter("text/csv; Charset=\"latin1\"", "charset")`
/// → `Some("latin1")`. The first one given counts.
pub fn parameter(content_type: &str, name: &str) -> Option<String> {
    let mut rest = content_type.split_once(';')?.1;
    loop {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((at, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = at + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let next = quoted[end..].split_once(';').map_or("", |(_, next)| next);
                (value, next)
            }
            None => {
                let (value, next) = after.split_once(';').unwrap_or((after, ""));
                (value.trim().to_string(), next)
            }
        };
        // A parameter without `=` before this one is skipped with the text up to its `;`.
        let key = key.rsplit(';').next().unwrap_or_default().trim();
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
        rest = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_case_and_space_do_not_matter() {
        assert_eq!(essence("Text/CSV; charset=utf-8"), "text/csv");
        assert_eq!(essence(" application/x-ndjson "), "application/x-ndjson");
        assert_eq!(essence(""), "");
    }

    #[test]
    fn each_name_of_a_media_type_lists_its_group_and_json_suffixes_are_json() {
        assert_eq!(same_media_type("application/csv")[0], "text/csv");
        assert_eq!(same_media_type("text/csv")[0], "text/csv");
        assert_eq!(same_media_type("application/jsonl")[0], "application/x-ndjson");
        assert!(same_media_type("application/jsonl").contains(&"application/ndjson"));
        assert_eq!(same_media_type("text/tsv")[0], "text/tab-separated-values");
        assert_eq!(same_media_type("application/fhir+json")[0], "application/json");
        assert!(same_media_type("application/+json").is_empty());
        assert!(same_media_type("text/fhir+json").is_empty());
        assert!(same_media_type("application/xml").is_empty());
        assert!(same_media_type("application/vnd.ms-excel").is_empty(), "may be a binary workbook");
    }

    #[test]
    fn parameters_are_found_by_name_quoted_or_not() {
        assert_eq!(parameter("text/csv; charset=utf-8", "charset").as_deref(), Some("utf-8"));
        assert_eq!(
            parameter("text/csv;Charset = ISO-8859-1 ;header=present", "charset").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(
            parameter("text/csv; header=present; charset=\"win\\\"dows;1252\"", "charset").as_deref(),
            Some("win\"dows;1252")
        );
        assert_eq!(parameter("text/csv; header=\"a;charset=x\"; charset=latin1", "charset").as_deref(), Some("latin1"));
        assert_eq!(parameter("text/csv; flag; charset=latin1", "charset").as_deref(), Some("latin1"));
        assert_eq!(parameter("text/csv", "charset"), None);
        assert_eq!(parameter("text/csv; header=present", "charset"), None);
    }
}
