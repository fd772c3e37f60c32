//! `sluice audit`: the audit log, filtered, for people or as JSON.

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use sluice_auth::{AuditEntry, AuditFilter, Outcome};

use crate::cli::{AuditArgs, Format};
use crate::paths::Paths;

/// Runs `sluice audit`.
pub fn run(paths: &Paths, args: AuditArgs) -> anyhow::Result<()> {
    if args.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let filter = filter(&args, Utc::now())?;
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since >= until
    {
        bail!("--since must be before --until (no row can be at or after {since} and before {until})");
    }
    let store = super::admin::open_store(paths, false)?;
    let mut rows = store.audit_rows(&filter, args.limit)?;
    rows.reverse();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table if rows.is_empty() => println!("no audit rows match"),
        Format::Table => print!("{}", table(&rows)),
    }
    Ok(())
}

/// The rows `args` select, times relative to `now`.
fn filter(args: &AuditArgs, now: DateTime<Utc>) -> anyhow::Result<AuditFilter> {
    let outcome = match &args.outcome {
        None => None,
        Some(name) => Some(Outcome::named(name).with_context(|| {
            let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            format!("--outcome `{name}` is not an outcome (one of: {})", names.join(", "))
        })?),
    };
    Ok(AuditFilter {
        since: args.since.as_deref().map(|at| time("--since", at, now)).transpose()?,
        until: args.until.as_deref().map(|at| time("--until", at, now)).transpose()?,
        user: args.user.clone(),
        source: args.source.clone(),
        client: args.client.clone(),
        request_id: args.request_id.clone(),
        outcome,
    })
}

/// A point in time given as a duration back from `now` (`90m`, `7d`), an RFC 3339 time
/// (`2026-12-01T08:00:00+01:00`; without an offset, UTC) or a date (its midnight, UTC).
fn time(flag: &str, given: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(ago) = humantime::parse_duration(given) {
        let ago = chrono::Duration::from_std(ago).ok().filter(|ago| now.checked_sub_signed(*ago).is_some());
        return ago.map(|ago| now - ago).with_context(|| format!("{flag} `{given}` reaches back too far"));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(given) {
        return Ok(at.with_timezone(&Utc));
    }
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(given, layout) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(given, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    bail!(
        "{flag} `{given}` is neither a duration (`30m`, `24h`, `7d`) nor a time (`2026-12-01`, `2026-12-01T08:00:00Z`)"
    )
}

/// The rows as a table for people.
fn table(rows: &[AuditEntry]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING).set_header([
        "AT", "USER", "SOURCE", "CLIENT", "OUTCOME", "ACCEPTED", "REJECTED", "DETAIL", "TIMES", "REQUEST",
    ]);
    let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    for row in rows {
        table.add_row([
            row.at.clone(),
            text(&row.user),
            text(&row.source),
            text(&row.client),
            row.outcome.as_str().to_string(),
            row.accepted.to_string(),
            row.rejected.to_string(),
            text(&row.detail),
            row.attempts.to_string(),
            row.request_id.clone(),
        ]);
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn times_are_durations_back_from_now_or_times_in_utc_unless_an_offset_is_given() {
        let now = at("2026-12-03T12:00:00Z");
        assert_eq!(time("--since", "90m", now).unwrap(), at("2026-12-03T10:30:00Z"));
        assert_eq!(time("--since", "7d", now).unwrap(), at("2026-11-26T12:00:00Z"));
        assert_eq!(time("--since", "2026-12-01", now).unwrap(), at("2026-12-01T00:00:00Z"));
        assert_eq!(time("--since", "2026-12-01T08:00:00+01:00", now).unwrap(), at("2026-12-01T07:00:00Z"));
        assert_eq!(time("--since", "2026-12-01 08:00", now).unwrap(), at("2026-12-01T08:00:00Z"));
        assert_eq!(
            time("--until", "yesterday", now).unwrap_err().to_string(),
            "--until `yesterday` is neither a duration (`30m`, `24h`, `7d`) nor a time (`2026-12-01`, \
             `2026-12-01T08:00:00Z`)"
        );
        assert_eq!(
            time("--since", "2026-13-01", now).unwrap_err().to_string().split(" is ").next(),
            Some("--since `2026-13-01`")
        );
        assert_eq!(
            time("--since", "300000000y", now).unwrap_err().to_string(),
            "--since `300000000y` reaches back too far"
        );
    }
}
