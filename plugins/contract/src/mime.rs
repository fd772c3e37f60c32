//! Content types as plugins declare and batches carry them.

/// The MIME essence of a content type: `Text/CSV; charset=utf-8` → `text/csv` (no parameters,
/// no surrounding space, lowercase). Manifests, batches and the API compare content types by
/// their essence only.
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
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
}
