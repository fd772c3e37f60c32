//! Spool retention: what every consumer has passed is trimmed after `retention`, the space is
//! handed back, and offsets are never reused.

use std::time::Duration;

use sluice_log::{DeadLetter, Provenance, RecordLog, Run, SpoolConfig, SqliteSpool, StreamLog, now_us};

fn provenance() -> Provenance {
    Provenance {
        source: "labs".into(),
        plugin: "labs@0.1.0".into(),
        plugin_digest: "ab".repeat(32),
        user: "hospital".into(),
        received_at_us: 1_700_000_000_000_000,
        request_id: "r".into(),
    }
}

fn records(n: usize, size: usize) -> Run {
    let mut run = Run::new("text/csv");
    for i in 0..n {
        run.push(Some(format!("k{i}")), &vec![b'x'; size]);
    }
    run
}

fn spool(path: &std::path::Path, retention: Duration) -> SqliteSpool {
    SqliteSpool::open(SpoolConfig { partitions: 1, retention, trim_every: None, ..SpoolConfig::new(path) }).unwrap()
}

/// The spool's bytes on disk: the file and its write-ahead log.
fn file_bytes(path: &std::path::Path) -> u64 {
    let wal = path.with_extension("db-wal");
    std::fs::metadata(path).unwrap().len() + std::fs::metadata(wal).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_retention_trims_what_the_stream_committed_hands_space_back_and_never_reuses_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let spool = spool(&path, Duration::ZERO);
    for _ in 0..20 {
        spool.append("labs", &provenance(), records(500, 1000)).await.unwrap();
    }
    let full = file_bytes(&path);
    assert!(full > 10_000_000, "10,000 records of 1 kB: {full} bytes");

    // Nothing is trimmed before the stream has committed anything.
    assert_eq!(spool.trim().await.unwrap().records, 0);
    assert_eq!(spool.stored_records().await.unwrap(), 10_000);

    let mut consumer = spool.consumer("labs").await.unwrap();
    consumer.commit(vec![sluice_log::Committed::at(0, 6_000)]).await.unwrap();
    let trimmed = spool.trim().await.unwrap();
    assert_eq!(trimmed.records, 6_000);
    assert_eq!(spool.stored_records().await.unwrap(), 4_000);
    assert_eq!(
        spool.read("labs", 0, 0, 1).unwrap()[0].position.offset,
        6_000,
        "the oldest left is the first not committed"
    );

    consumer.commit(vec![sluice_log::Committed::at(0, 10_000)]).await.unwrap();
    let trimmed = spool.trim().await.unwrap();
    assert_eq!(trimmed.records, 4_000);
    assert!(trimmed.pages_freed > 0);
    assert_eq!(spool.stored_records().await.unwrap(), 0);
    let empty = std::fs::metadata(&path).unwrap().len();
    let wal = file_bytes(&path) - empty;
    assert!(empty * 100 < full, "the file shrank from {full} to {empty} bytes");
    assert!(wal <= 4 * 1024 * 1024, "the write-ahead log is held to its limit: {wal} bytes");
    println!(
        "10,000 records of 1 kB: spool file and write-ahead log {full} bytes; once trimmed, file {empty} bytes, \
         write-ahead log {wal} bytes"
    );

    // The next record continues the partition's offsets, here and after a reopen.
    let next = spool.append("labs", &provenance(), records(1, 10)).await.unwrap();
    assert_eq!(next[0].offset, 10_000);
    drop(consumer);
    drop(spool);
    let spool = self::spool(&path, Duration::ZERO);
    let mut consumer = spool.consumer("labs").await.unwrap();
    consumer.commit(vec![sluice_log::Committed::at(0, 10_001)]).await.unwrap();
    spool.trim().await.unwrap();
    let next = spool.append("labs", &provenance(), records(1, 10)).await.unwrap();
    assert_eq!(next[0].offset, 10_001, "offsets continue after everything was trimmed and the spool reopened");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retention_keeps_committed_records_until_they_are_old_enough() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let spool = spool(&path, Duration::from_secs(3600));
    spool.append("labs", &provenance(), records(100, 10)).await.unwrap();
    spool.consumer("labs").await.unwrap().commit(vec![sluice_log::Committed::at(0, 100)]).await.unwrap();
    assert_eq!(spool.trim().await.unwrap().records, 0, "committed a moment ago: kept for the hour");
    assert_eq!(spool.stored_records().await.unwrap(), 100);
    drop(spool);
    // The same file with a zero retention trims them.
    let spool = self::spool(&path, Duration::ZERO);
    assert_eq!(spool.trim().await.unwrap().records, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_go_only_once_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = spool(&dir.path().join("spool.db"), Duration::ZERO);
    spool.append("labs", &provenance(), records(3, 10)).await.unwrap();
    let stored = spool.read("labs", 0, 0, 10).unwrap();
    let letters = stored
        .into_iter()
        .map(|record| DeadLetter {
            record,
            reason: "bad".into(),
            field: None,
            plugin: "labs@0.1.0".into(),
            failed_at_us: now_us(),
        })
        .collect();
    spool.dead_letter("labs", letters).await.unwrap();
    spool.consumer("labs").await.unwrap().commit(vec![sluice_log::Committed::at(0, 3)]).await.unwrap();

    let trimmed = spool.trim().await.unwrap();
    assert_eq!((trimmed.records, trimmed.dead_letters), (3, 0), "dead letters keep their own copy");
    assert_eq!(spool.dead_letters("labs", 0, 10).await.unwrap().len(), 3);

    spool.set_replay_cursor("labs", 2).await.unwrap();
    assert_eq!(spool.trim().await.unwrap().dead_letters, 2);
    let left = spool.dead_letters("labs", 0, 10).await.unwrap();
    assert_eq!(left.iter().map(|d| d.sequence).collect::<Vec<_>>(), vec![2]);
}
