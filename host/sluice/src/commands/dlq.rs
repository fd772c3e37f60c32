//! `sluice dlq list|replay`: a source's dead letters.

use std::collections::HashSet;

use anyhow::Context;
use serde_json::json;
use sluice_log::{Position, Run, StoredDeadLetter, StreamLog};

use crate::assembly::Assembly;
use crate::cli::{DlqCommand, Format};
use crate::config::Config;
use crate::paths::Paths;
use crate::render::timestamp_text;

const PAGE: usize = 1000;

/// Runs a `dlq` command.
pub fn run(paths: &Paths, command: DlqCommand) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async {
        match command {
            DlqCommand::List { source, config, all, format } => {
                let assembly = Assembly::new(paths, Config::load(config.as_deref())?);
                ensure_known(&assembly, &source)?;
                list(&*assembly.existing_log().await?, &source, all, format).await
            }
            DlqCommand::Replay { source, config } => {
                let assembly = Assembly::new(paths, Config::load(config.as_deref())?);
                ensure_known(&assembly, &source)?;
                // With several instances, from any of them, but one replay of a source at a time:
                // two at once would append the same letters twice.
                let _turn = replay_turn(paths, &assembly, &source).await?;
                replay(&*assembly.existing_log().await?, &source).await
            }
        }
    })
}

/// On the shared auth store, the right to replay `source`'s dead letters (held until dropped);
/// `None` needed on the embedded store.
async fn replay_turn(
    paths: &Paths,
    assembly: &Assembly<'_>,
    source: &str,
) -> anyhow::Result<Option<sluice_auth::Leader>> {
    let policy = assembly.config().auth.clone();
    if policy.url.expose().is_empty() {
        return Ok(None);
    }
    let (path, role) = (paths.auth_db(), format!("dlq-replay-{source}"));
    let turn = tokio::task::spawn_blocking(move || {
        sluice_auth::AuthStore::open_configured(&path, policy).and_then(|store| store.try_lead(&role))
    })
    .await??;
    match turn {
        Some(turn) => Ok(Some(turn)),
        None => anyhow::bail!("a replay of `{source}` is running on another instance; run it again once that is done"),
    }
}

/// Fails unless `source` is a source sluice knows now: a loaded plugin or a `[sources]` binding.
fn ensure_known(assembly: &Assembly, source: &str) -> anyhow::Result<()> {
    anyhow::ensure!(sluice_auth::is_valid_name(source), "`{source}` is not a valid source name");
    let sources = assembly.loaded_sources()?;
    let names = sources.names();
    anyhow::ensure!(
        names.iter().any(|name| name == source),
        "no source `{source}` (sources: {})",
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    );
    Ok(())
}

async fn read_all(log: &dyn StreamLog, source: &str, from: u64) -> anyhow::Result<Vec<StoredDeadLetter>> {
    anyhow::ensure!(sluice_auth::is_valid_name(source), "`{source}` is not a valid source name");
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let page = log.dead_letters(source, next, PAGE).await.context("cannot read the dead-letter queue")?;
        let Some(last) = page.last() else { break };
        next = last.sequence + 1;
        let full = page.len() == PAGE;
        out.extend(page);
        if !full {
            break;
        }
    }
    Ok(out)
}

async fn list(log: &dyn StreamLog, source: &str, all: bool, format: Format) -> anyhow::Result<()> {
    let cursor = log.replay_cursor(source).await?;
    let letters = read_all(log, source, if all { 0 } else { cursor }).await?;
    match format {
        Format::Json => {
            let entries: Vec<_> = letters
                .iter()
                .map(|l| {
                    let e = &l.entry;
                    json!({
                        "sequence": l.sequence,
                        "replayed": l.sequence < cursor,
                        "partition": e.record.position.partition,
                        "offset": e.record.position.offset,
                        "plugin": e.plugin,
                        "reason": e.reason,
                        "field": e.field,
                        "failed_at": timestamp_text(e.failed_at_us),
                        "request_id": e.record.provenance.request_id,
                        "user": e.record.provenance.user,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&json!({ "source": source, "entries": entries }))?);
        }
        Format::Table => {
            if letters.is_empty() {
                println!("no dead letters for {source}{}", if all { "" } else { " waiting for replay" });
                return Ok(());
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING).set_header([
                "SEQ",
                "POSITION",
                "PLUGIN",
                "REASON",
                "FIELD",
                "FAILED AT",
                "REQUEST",
            ]);
            for l in &letters {
                let e = &l.entry;
                table.add_row([
                    format!("{}{}", l.sequence, if l.sequence < cursor { " (replayed)" } else { "" }),
                    format!("{}:{}", e.record.position.partition, e.record.position.offset),
                    e.plugin.clone(),
                    e.reason.clone(),
                    e.field.clone().unwrap_or_default(),
                    timestamp_text(e.failed_at_us),
                    e.record.provenance.request_id.clone(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}

/// Appends every dead letter from the replay cursor on to the source's log, once per original
/// position (a record dead-lettered twice, e.g. around a crash, is replayed once, and never
/// again once replayed), then moves the cursor past them.
async fn replay(log: &dyn StreamLog, source: &str) -> anyhow::Result<()> {
    let cursor = log.replay_cursor(source).await?;
    let mut seen: HashSet<Position> = read_all(log, source, 0)
        .await?
        .iter()
        .filter(|l| l.sequence < cursor)
        .map(|l| l.entry.record.position)
        .collect();
    let pending = read_all(log, source, cursor).await?;
    let Some(last) = pending.last().map(|l| l.sequence) else {
        println!("nothing to replay for {source}");
        return Ok(());
    };
    let mut replayed = 0;
    for letter in &pending {
        let record = &letter.entry.record;
        if !seen.insert(record.position) {
            continue;
        }
        let copy = Run::single(record.record.key.clone(), record.record.content_type.clone(), &record.record.payload);
        log.append(source, &record.provenance, copy).await.context("cannot append to the log")?;
        replayed += 1;
    }
    log.set_replay_cursor(source, last + 1).await.context("cannot store the replay cursor")?;
    println!("replayed {replayed} record(s) of {source}; {} duplicate entr(ies) skipped", pending.len() - replayed);
    Ok(())
}
