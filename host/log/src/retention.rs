//! Trimming the spool: records every consumer has passed and dead letters already replayed go
//! once they are older than the retention, and the space they held goes back to the file system.
//!
//! A record is passed when the stream's committed position (stored only after its rows are in
//! the warehouse) is beyond it. Dead letters hold their own copy of a record, so trimming
//! records never takes one away; a dead letter is passed when the source's replay cursor is
//! beyond it. Offsets are never reused: each partition's next offset is kept in
//! `partition_ends`, whatever was trimmed.

use std::time::Duration;

use rusqlite::{Connection, params};

use crate::remembered::now_us;

/// Records deleted per transaction, so that appends are never held up for long.
const CHUNK: i64 = 20_000;

/// Pages handed back to the file system per `incremental_vacuum` step.
const VACUUM_STEP: i64 = 4096;

/// What one trim removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed {
    /// Records deleted.
    pub records: u64,
    /// Dead letters deleted.
    pub dead_letters: u64,
    /// File pages returned to the file system.
    pub pages_freed: u64,
}

/// The retention's cutoff: rows appended at or before it may go.
fn cutoff(retention: Duration) -> i64 {
    now_us().saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX))
}

/// Deletes what every consumer has passed and is older than `retention`, then returns free
/// pages to the file system.
pub(crate) fn trim(conn: &Connection, retention: Duration) -> rusqlite::Result<Trimmed> {
    let cutoff = cutoff(retention);
    let mut trimmed = Trimmed::default();
    let positions: Vec<(String, u32, i64)> = conn
        .prepare("SELECT source, partition, next FROM consumer_positions")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (source, partition, next) in positions {
        trimmed.records += trim_partition(conn, &source, partition, next, cutoff)?;
    }
    let cursors: Vec<(String, i64)> = conn
        .prepare("SELECT source, next FROM replay_cursors")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (source, next) in cursors {
        trimmed.dead_letters += conn
            .prepare_cached(
                "DELETE FROM dead_letters WHERE source = ?1 AND sequence < ?2
                 AND json_extract(meta, '$.failed_at_us') <= ?3",
            )?
            .execute(params![source, next, cutoff])? as u64;
    }
    if trimmed.records + trimmed.dead_letters > 0 {
        trimmed.pages_freed = vacuum(conn)?;
    }
    shrink_wal(conn)?;
    Ok(trimmed)
}

/// The size the write-ahead log is cut back to (also the spool's `journal_size_limit`).
pub(crate) const WAL_LIMIT: u64 = 4 * 1024 * 1024;

/// Cuts the write-ahead log back to nothing when it has grown past [`WAL_LIMIT`] (a burst of
/// load while readers held old snapshots). SQLite only shortens it when a write restarts it, and
/// with the API refusing records at the free-space floor no write may come: on a nearly full
/// disk that space is what the stream needs. The checkpoint does not wait: if a reader or the
/// writer is busy, it is tried again next time.
fn shrink_wal(conn: &Connection) -> rusqlite::Result<()> {
    let Some(path) = conn.path().filter(|p| !p.is_empty()) else { return Ok(()) };
    let wal = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
    if wal <= WAL_LIMIT {
        return Ok(());
    }
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    match result {
        Ok(_)
        | Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error { code: rusqlite::ErrorCode::DatabaseBusy, .. },
            _,
        )) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Deletes one partition's passed, expired records, a chunk of offsets per transaction, oldest
/// first; stops at the first record the retention still keeps.
fn trim_partition(conn: &Connection, source: &str, partition: u32, next: i64, cutoff: i64) -> rusqlite::Result<u64> {
    let first: Option<i64> = conn.query_row(
        "SELECT MIN(offset) FROM records WHERE source = ?1 AND partition = ?2",
        params![source, partition],
        |r| r.get(0),
    )?;
    let Some(mut low) = first else { return Ok(0) };
    let mut deleted = 0;
    while low < next {
        let high = next.min(low + CHUNK);
        let gone = conn
            .prepare_cached(
                "DELETE FROM records WHERE source = ?1 AND partition = ?2 AND offset >= ?3 AND offset < ?4
                 AND COALESCE(appended_us, 0) <= ?5",
            )?
            .execute(params![source, partition, low, high, cutoff])?;
        deleted += gone as u64;
        let kept: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM records WHERE source = ?1 AND partition = ?2 AND offset >= ?3 AND offset < ?4)",
            )?
            .query_row(params![source, partition, low, high], |r| r.get(0))?;
        if kept {
            break;
        }
        low = high;
    }
    Ok(deleted)
}

/// Returns the file's free pages to the file system (the spool is created with
/// `auto_vacuum = INCREMENTAL`; an older file keeps reusing its free pages instead).
fn vacuum(conn: &Connection) -> rusqlite::Result<u64> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode != 2 {
        return Ok(0);
    }
    let mut freed = 0;
    loop {
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if free == 0 {
            break;
        }
        let step = free.min(VACUUM_STEP);
        // `incremental_vacuum` returns no rows; run it to completion.
        conn.prepare(&format!("PRAGMA incremental_vacuum({step})"))?.query([])?.next()?;
        freed += step as u64;
        let after: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if after >= free {
            break;
        }
    }
    // A passive checkpoint never holds up the writer; the log is cut back to
    // `journal_size_limit` when it next restarts.
    let _: (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(freed)
}
