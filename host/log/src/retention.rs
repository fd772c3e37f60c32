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

/// Runs deleted per transaction, so that appends are never held up for long.
const CHUNK: i64 = 1_000;

/// Live data up to which the trimmer rewrites the file (`VACUUM`) to hand its surplus free pages
/// back: the rewrite costs what is live and holds appends meanwhile (about a second for this
/// much). SQLite's `incremental_vacuum` is not used: it searches the free list for every page
/// it moves, which took 21 s for 165 MiB of free pages.
const REWRITE_LIVE_LIMIT: i64 = 64 * 1024 * 1024;

/// Surplus free space below which a rewrite is not worth it.
const REWRITE_MIN_SURPLUS: i64 = 1024 * 1024;

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

/// What the trimmer remembers from one run to the next, so that it only hands back space the
/// load is not about to take again, and only forces the write-ahead log back when appends have
/// stopped. A fresh `Pacing` hands everything back.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// The file's pages and free pages when the last trim ended.
    after_last: Option<(i64, i64)>,
    /// The sum of every partition's next offset at the last trim: unchanged means idle (and
    /// no last trim counts as idle too).
    appended_last: Option<i64>,
}

/// Deletes what every consumer has passed and is older than `retention`, then returns free
/// pages to the file system, keeping as many as the appends since the last trim took (at a
/// steady load they are reused before the next trim; once the load drops they go back, as soon
/// as what is live is small enough to rewrite: until then the file stays at its high-water mark,
/// bounded by the backlog plus the retention).
pub(crate) fn trim(conn: &Connection, retention: Duration, pacing: &mut Pacing) -> rusqlite::Result<Trimmed> {
    let cutoff = cutoff(retention);
    let mut trimmed = Trimmed::default();
    let (pages_before, free_before) = pages(conn)?;
    let taken_since_last = match pacing.after_last {
        Some((pages, free)) => ((pages_before - pages) + (free - free_before)).max(0),
        None => 0,
    };
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
    let (count, free) = pages(conn)?;
    let surplus = free - free.min(taken_since_last);
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    if surplus * page_size >= REWRITE_MIN_SURPLUS && (count - free) * page_size <= REWRITE_LIVE_LIMIT {
        conn.execute_batch("VACUUM")?;
        // The rewrite went to the write-ahead log; a passive checkpoint (it never holds up the
        // writer) moves it into the file and shortens the file.
        let _: (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        trimmed.pages_freed = (count - pages(conn)?.0).max(0) as u64;
    }
    let appended: i64 = conn.query_row("SELECT COALESCE(SUM(next), 0) FROM partition_ends", [], |r| r.get(0))?;
    if pacing.appended_last.is_none_or(|last| last == appended) {
        shrink_wal(conn)?;
    }
    pacing.appended_last = Some(appended);
    pacing.after_last = Some(pages(conn)?);
    Ok(trimmed)
}

/// The file's pages and how many of them are free.
fn pages(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let count = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok((count, free))
}

/// The size the write-ahead log is cut back to (also the spool's `journal_size_limit`).
pub(crate) const WAL_LIMIT: u64 = 4 * 1024 * 1024;

/// Cuts the write-ahead log back to nothing when it has grown past [`WAL_LIMIT`] (a burst of
/// load while readers held old snapshots). SQLite only shortens it when a write restarts it, and
/// with the API refusing records at the free-space floor no write may come: on a nearly full
/// disk that space is what the stream needs. Only tried once appends have stopped for a trim
/// interval (a `TRUNCATE` checkpoint holds the writer while it copies). The checkpoint does not wait: if a reader or the
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

/// A partition's oldest runs: answered from the `runs_by_age` index alone. (From the table, it
/// read every run's payloads: `appended_us` comes after them in the row, and reaching it walks
/// the payloads' overflow pages — a gigabyte per trim of a spool under load.)
const OLDEST_RUNS: &str = "SELECT first, count, appended_us FROM runs WHERE source = ?1 AND partition = ?2
     ORDER BY first LIMIT ?3";

/// Deletes one partition's passed, expired runs, oldest first, a chunk of runs per
/// transaction; stops at the first run the stream has not passed entirely or the retention
/// still keeps.
fn trim_partition(conn: &Connection, source: &str, partition: u32, next: i64, cutoff: i64) -> rusqlite::Result<u64> {
    let mut deleted = 0;
    loop {
        let oldest: Vec<(i64, i64, i64)> = conn
            .prepare_cached(OLDEST_RUNS)?
            .query_map(params![source, partition, CHUNK], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let passed = oldest.iter().take_while(|(first, count, at)| first + count <= next && *at <= cutoff).count();
        let Some(&(last, _, _)) = passed.checked_sub(1).and_then(|i| oldest.get(i)) else { return Ok(deleted) };
        conn.prepare_cached("DELETE FROM runs WHERE source = ?1 AND partition = ?2 AND first <= ?3")?
            .execute(params![source, partition, last])?;
        deleted += oldest[..passed].iter().map(|(_, count, _)| *count as u64).sum::<u64>();
        if passed < oldest.len() || oldest.len() < CHUNK as usize {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Provenance, RecordLog, Run, SpoolConfig, SqliteSpool, StreamLog};

    async fn append_and_commit(spool: &SqliteSpool, upto: u64) {
        let provenance = Provenance {
            source: "labs".into(),
            plugin: "labs@0.1.0".into(),
            plugin_digest: "ab".repeat(32),
            user: "u".into(),
            received_at_us: 1,
            request_id: "r".into(),
        };
        let mut run = Run::new("text/csv");
        for _ in 0..6_000 {
            run.push(None, &[7; 1000]);
        }
        spool.append("labs", &provenance, run).await.unwrap();
        spool.consumer("labs").await.unwrap().commit(vec![crate::Committed::at(0, upto)]).await.unwrap();
    }

    #[test]
    fn the_trimmer_finds_the_oldest_runs_without_reading_their_payloads() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::spool::open(&dir.path().join("spool.db")).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {OLDEST_RUNS}"))
            .unwrap()
            .query_map(params!["labs", 0, CHUNK], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(plan.iter().any(|step| step.contains("COVERING INDEX runs_by_age")), "{plan:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn space_the_load_keeps_taking_stays_in_the_file_and_goes_back_once_the_load_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        let spool = SqliteSpool::open(SpoolConfig {
            partitions: 1,
            retention: Duration::ZERO,
            trim_every: None,
            ..SpoolConfig::new(&path)
        })
        .unwrap();
        let conn = crate::spool::open(&path).unwrap();
        let mut pacing = Pacing::default();

        append_and_commit(&spool, 6_000).await;
        let first = trim(&conn, Duration::ZERO, &mut pacing).unwrap();
        assert_eq!(first.records, 6_000);
        assert!(first.pages_freed > 1_400, "nothing to go by yet: every free page goes back ({first:?})");
        assert_eq!(pages(&conn).unwrap().1, 0);

        // The same load again: it took about as many pages as the trim then frees, so they stay.
        append_and_commit(&spool, 12_000).await;
        let steady = trim(&conn, Duration::ZERO, &mut pacing).unwrap();
        assert_eq!(steady.records, 6_000);
        let kept = pages(&conn).unwrap().1;
        assert!(steady.pages_freed * 10 < first.pages_freed, "steady load: {steady:?}, {kept} kept");
        assert!(kept > 1_400, "the freed pages wait for the next appends: {kept}");

        // No appends since: they go back.
        let idle = trim(&conn, Duration::ZERO, &mut pacing).unwrap();
        assert_eq!(idle.records, 0);
        assert!(idle.pages_freed >= kept as u64 - 1, "{idle:?}");
        assert_eq!(pages(&conn).unwrap().1, 0);
    }
}
