//! Printing plugins and their output, as tables for people or JSON for programs.

use chrono::{DateTime, NaiveDate};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Map, Value, json};
use sluice_runtime::{Cell, Plugin, Rejection, TableRows};

use crate::check::CheckRun;

/// A value as JSON: timestamps as ISO-8601 wall-clock strings, instants as ISO-8601 UTC strings
/// (`Z`), dates as `YYYY-MM-DD`, NULL as null.
pub fn cell_json(cell: Cell<'_>) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Boolean(b) => b.into(),
        Cell::Integer(i) => i.into(),
        Cell::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Cell::String(s) => s.into(),
        Cell::Date(days) => date_text(days).into(),
        Cell::Timestamp(micros) => timestamp_text(micros).into(),
        Cell::Instant(micros) => format!("{}Z", timestamp_text(micros)).into(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]`, no time zone: the wall-clock value the sender meant.
pub fn timestamp_text(micros: i64) -> String {
    match DateTime::from_timestamp_micros(micros) {
        Some(t) => t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
        None => format!("<timestamp {micros} out of range>"),
    }
}

fn date_text(days: i32) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::days(days.into())))
        .map_or_else(|| format!("<date {days} out of range>"), |d| d.format("%Y-%m-%d").to_string())
}

fn cell_text(cell: Cell<'_>) -> String {
    match cell_json(cell) {
        Value::Null => "NULL".into(),
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Identity of a plugin.
pub fn plugin_json(plugin: &Plugin) -> Value {
    let m = plugin.manifest();
    json!({
        "name": m.name,
        "version": m.version,
        "digest": plugin.digest(),
        "contract": format!("sluice:plugin@{}", plugin.contract()),
        "origin": plugin.origin().to_string(),
        "content_types": m.content_types,
    })
}

/// Everything a plugin declares.
pub fn manifest_json(plugin: &Plugin) -> Value {
    let mut value = plugin_json(plugin);
    let m = plugin.manifest();
    value["doc"] = m.doc.clone().into();
    value["settings"] = serde_json::to_value(&m.settings).unwrap_or_default();
    value["tables"] = serde_json::to_value(&m.tables).unwrap_or_default();
    value
}

fn rows_json(rows: &TableRows, plugin: &Plugin) -> Value {
    let schema = plugin.manifest().table(&rows.table).map(|t| t.columns.as_slice()).unwrap_or_default();
    (0..rows.len())
        .map(|row| {
            let object: Map<String, Value> =
                schema.iter().zip(&rows.columns).map(|(c, data)| (c.name.clone(), cell_json(data.cell(row)))).collect();
            Value::Object(object)
        })
        .collect()
}

fn rejection_json(r: &Rejection) -> Value {
    json!({ "index": r.record, "reason": r.reason, "field": r.field })
}

/// The result of `plugin check` with input, as one JSON document.
pub fn check_json(plugin: &Plugin, run: &CheckRun) -> Value {
    let out = &run.rows;
    let mut tables = Map::new();
    for schema in &plugin.manifest().tables {
        let rows = out.table(&schema.name).map_or_else(|| Value::Array(Vec::new()), |rows| rows_json(rows, plugin));
        tables.insert(schema.name.clone(), rows);
    }
    json!({
        "plugin": plugin_json(plugin),
        "accepted": run.accepted,
        "tables": tables,
        "rejected": run.rejected.iter().map(rejection_json).collect::<Vec<_>>(),
        "refused_after_split": run.refused.iter().map(rejection_json).collect::<Vec<_>>(),
    })
}

fn new_table(header: Vec<String>) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header);
    table
}

/// The result of `plugin check` with input, for people.
pub fn check_text(plugin: &Plugin, run: &CheckRun) -> String {
    let out = &run.rows;
    let mut text = format!("{} ({})\n\naccepted by split — {} record(s)\n", plugin.id(), plugin.origin(), run.accepted);
    for schema in &plugin.manifest().tables {
        let rows = out.table(&schema.name);
        let count = rows.map_or(0, TableRows::len);
        text.push_str(&format!("\ntable {} — {count} row(s)\n", schema.name));
        if let Some(rows) = rows.filter(|r| !r.is_empty()) {
            let mut table = new_table(schema.columns.iter().map(|c| c.name.clone()).collect());
            for row in 0..rows.len() {
                table.add_row(rows.columns.iter().map(|c| cell_text(c.cell(row))).collect::<Vec<_>>());
            }
            text.push_str(&format!("{table}\n"));
        }
    }
    text.push_str(&rejections_text("rejected", &run.rejected));
    if !run.refused.is_empty() {
        text.push_str(&rejections_text(
            "refused by transform after split accepted them (would be dead-lettered)",
            &run.refused,
        ));
    }
    text
}

/// A heading with a count, then one line per rejection: index in the body, field, reason.
fn rejections_text(heading: &str, rejections: &[Rejection]) -> String {
    let mut text = format!("\n{heading} — {} record(s)\n", rejections.len());
    if !rejections.is_empty() {
        let mut table = new_table(vec!["index".into(), "field".into(), "reason".into()]);
        for r in rejections {
            table.add_row(vec![r.record.to_string(), r.field.clone().unwrap_or_default(), r.reason.clone()]);
        }
        text.push_str(&format!("{table}\n"));
    }
    text
}

/// A plugin's manifest, for people.
pub fn manifest_text(plugin: &Plugin) -> String {
    let m = plugin.manifest();
    let mut text = format!(
        "{}\n{}\n\norigin:        {}\ndigest:        {}\ncontract:      sluice:plugin@{}\ncontent types: {}\n",
        plugin.id(),
        m.doc,
        plugin.origin(),
        plugin.digest(),
        plugin.contract(),
        m.content_types.join(", ")
    );
    text.push_str("\nsettings:\n");
    if m.settings.is_empty() {
        text.push_str("  (none)\n");
    }
    for s in &m.settings {
        let default = s.default.as_deref().map(|d| format!(" [default: {d}]")).unwrap_or_default();
        text.push_str(&format!("  {}{default}\n      {}\n", s.name, s.doc));
    }
    for t in &m.tables {
        text.push_str(&format!("\ntable {}: {}\n", t.name, t.doc));
        let mut table = new_table(vec!["column".into(), "type".into(), "null".into(), "doc".into()]);
        for c in &t.columns {
            let nullable = if c.nullable { "yes" } else { "no" };
            table.add_row(vec![c.name.clone(), c.column_type.to_string(), nullable.into(), c.doc.clone()]);
        }
        text.push_str(&format!("{table}\n"));
    }
    text
}

/// `plugin list`, for people.
pub fn list_text(plugins: &[std::sync::Arc<Plugin>]) -> String {
    let mut table = new_table(
        ["name", "version", "digest", "content types", "tables", "origin"].iter().map(|s| s.to_string()).collect(),
    );
    for p in plugins {
        let m = p.manifest();
        table.add_row(vec![
            m.name.clone(),
            m.version.clone(),
            p.digest()[..12].to_string(),
            m.content_types.join(", "),
            m.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
            p.origin().to_string(),
        ]);
    }
    format!("{table}\n")
}
