//! The SQLite spool: durable appends, keyed partitions, gap-free offsets across reopen.

use sluice_log::{LogRecord, Position, Provenance, RecordLog, Run, SpoolConfig, SqliteSpool, StoredRecord, StoredRun};

fn provenance(request: &str) -> Provenance {
    Provenance {
        source: "patients".into(),
        plugin: "patients@0.1.0".into(),
        plugin_digest: "ab".repeat(32),
        user: "hospital".into(),
        received_at_us: 1_700_000_000_000_000,
        request_id: request.into(),
    }
}

fn record(key: &str, body: &str) -> LogRecord {
    LogRecord { key: Some(key.into()), content_type: "application/json".into(), payload: body.as_bytes().to_vec() }
}

/// One run of `records` (all of one content type).
fn run(records: impl IntoIterator<Item = LogRecord>) -> Run {
    let mut records = records.into_iter().peekable();
    let mut run = Run::new(records.peek().map(|r| r.content_type.clone()).unwrap_or_default());
    for record in records {
        assert_eq!(record.content_type, run.content_type);
        run.push(record.key, &record.payload);
    }
    run
}

/// The records of polled runs, one by one.
fn flat(runs: &[StoredRun]) -> Vec<StoredRecord> {
    runs.iter().flat_map(StoredRun::records).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn appended_records_read_back_in_key_order_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let positions = {
        let spool = SqliteSpool::open(SpoolConfig::new(&path)).unwrap();
        assert!(spool.is_ready());
        let first =
            spool.append("patients", &provenance("r1"), run(vec![record("p1", "a"), record("p1", "b")])).await.unwrap();
        let second = spool.append("patients", &provenance("r2"), run(vec![record("p1", "c")])).await.unwrap();
        [first, second].concat()
    };
    let partition = positions[0].partition;
    assert!(positions.iter().all(|p| p.partition == partition), "one key, one partition");
    assert_eq!(positions.iter().map(|p| p.offset).collect::<Vec<_>>(), vec![0, 1, 2]);

    let spool = SqliteSpool::open(SpoolConfig::new(&path)).unwrap();
    let more = spool.append("patients", &provenance("r3"), run(vec![record("p1", "d")])).await.unwrap();
    assert_eq!(more, vec![Position { partition, offset: 3 }], "offsets continue after a restart");
    let stored = spool.read("patients", partition, 0, 10).unwrap();
    let bodies: Vec<&[u8]> = stored.iter().map(|s| s.record.payload.as_slice()).collect();
    assert_eq!(bodies, vec![&b"a"[..], b"b", b"c", b"d"]);
    assert_eq!(stored[2].provenance.request_id, "r2");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_get_distinct_gap_free_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let spool = std::sync::Arc::new(
        SqliteSpool::open(SpoolConfig { partitions: 2, ..SpoolConfig::new(dir.path().join("s.db")) }).unwrap(),
    );
    let mut tasks = Vec::new();
    for i in 0..50 {
        let spool = spool.clone();
        tasks.push(tokio::spawn(async move {
            let records = run((0..10).map(|j| record(&format!("k{}", (i * 10 + j) % 7), "x")));
            spool.append("labs", &provenance(&format!("r{i}")), records).await.unwrap()
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(all.len(), 500);
    for partition in 0..2 {
        let mut offsets: Vec<u64> = all.iter().filter(|p| p.partition == partition).map(|p| p.offset).collect();
        offsets.sort();
        assert_eq!(offsets, (0..offsets.len() as u64).collect::<Vec<_>>());
        assert_eq!(spool.read("labs", partition, 0, 1000).unwrap().len(), offsets.len());
    }
}

/// Records in partitions a lower `log.partitions` no longer names (lowered after a crash, before
/// the stream drained them) are still read; new records go to the configured partitions.
#[tokio::test(flavor = "multi_thread")]
async fn partitions_written_under_a_larger_count_are_still_read() {
    use sluice_log::StreamLog;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let written = {
        let spool = SqliteSpool::open(SpoolConfig { partitions: 8, ..SpoolConfig::new(&path) }).unwrap();
        let keys: Vec<String> = (0..64).map(|i| format!("p{i}")).collect();
        let positions = spool.append("labs", &provenance("r1"), run(keys.iter().map(|k| record(k, k)))).await.unwrap();
        assert!(positions.iter().any(|p| p.partition >= 2), "some records beyond partition 1");
        positions.len()
    };
    let spool = SqliteSpool::open(SpoolConfig { partitions: 2, ..SpoolConfig::new(&path) }).unwrap();
    let more = spool.append("labs", &provenance("r2"), run((0..16).map(|i| record(&format!("q{i}"), "new")))).await;
    assert!(more.unwrap().iter().all(|p| p.partition < 2), "new records go to the configured partitions");
    let mut consumer = spool.consumer("labs").await.unwrap();
    assert_eq!(consumer.partitions(), 8);
    for partition in 0..8 {
        consumer.seek(partition, 0).await.unwrap();
    }
    let mut read = 0;
    while read < written + 16 {
        let runs = consumer.poll(1000, std::time::Duration::from_secs(5)).await.unwrap();
        assert!(!runs.is_empty(), "only {read} of {} records read", written + 16);
        read += flat(&runs).len();
    }
    assert_eq!(read, written + 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_reads_from_its_seek_position_wakes_on_appends_and_keeps_commits() {
    use sluice_log::StreamLog;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let spool =
        std::sync::Arc::new(SqliteSpool::open(SpoolConfig { partitions: 1, ..SpoolConfig::new(&path) }).unwrap());
    spool
        .append("labs", &provenance("r1"), run(vec![record("a", "0"), record("a", "1"), record("a", "2")]))
        .await
        .unwrap();
    let mut consumer = spool.consumer("labs").await.unwrap();
    assert_eq!(consumer.partitions(), 1);
    let wait = std::time::Duration::from_secs(30);
    assert!(consumer.poll(10, std::time::Duration::ZERO).await.unwrap().is_empty(), "nothing before a seek");
    consumer.seek(0, 1).await.unwrap();
    let read = flat(&consumer.poll(10, wait).await.unwrap());
    assert_eq!(read.iter().map(|r| r.position.offset).collect::<Vec<_>>(), vec![1, 2]);

    // A poll with nothing to read returns as soon as a record is appended.
    let appender = {
        let spool = spool.clone();
        tokio::spawn(async move { spool.append("labs", &provenance("r2"), run(vec![record("a", "3")])).await.unwrap() })
    };
    let read = flat(&consumer.poll(10, wait).await.unwrap());
    appender.await.unwrap();
    assert_eq!(read.iter().map(|r| r.record.payload.clone()).collect::<Vec<_>>(), vec![b"3".to_vec()]);
    assert_eq!(read[0].provenance.request_id, "r2");

    assert_eq!(consumer.committed(vec![0]).await.unwrap(), vec![]);
    consumer.commit(vec![sluice_log::Committed::at(0, 4)]).await.unwrap();
    drop(consumer);
    let mut again = SqliteSpool::open(SpoolConfig { partitions: 1, ..SpoolConfig::new(&path) })
        .unwrap()
        .consumer("labs")
        .await
        .unwrap()
        .committed(vec![0])
        .await
        .unwrap();
    assert_eq!(again.pop(), Some(sluice_log::Committed::at(0, 4)), "commits survive a reopen");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_keep_payload_reason_and_position_and_the_replay_cursor_persists() {
    use sluice_log::{DeadLetter, StreamLog};
    let dir = tempfile::tempdir().unwrap();
    let spool = SqliteSpool::open(SpoolConfig::new(dir.path().join("spool.db"))).unwrap();
    let positions =
        spool.append("labs", &provenance("r1"), run(vec![record("a", "bad"), record("b", "worse")])).await.unwrap();
    let stored: Vec<_> =
        positions.iter().map(|p| spool.read("labs", p.partition, p.offset, 1).unwrap().remove(0)).collect();
    let letters = stored
        .iter()
        .map(|record| DeadLetter {
            record: record.clone(),
            reason: "plugin lab_results@0.1.0 trapped: boom".into(),
            field: None,
            plugin: "lab_results@0.1.0".into(),
            failed_at_us: 1,
        })
        .collect();
    spool.dead_letter("labs", letters).await.unwrap();
    let read = spool.dead_letters("labs", 0, 10).await.unwrap();
    assert_eq!(read.iter().map(|l| l.sequence).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(read[1].entry.record, stored[1]);
    assert_eq!(read[1].entry.reason, "plugin lab_results@0.1.0 trapped: boom");
    assert!(spool.dead_letters("other", 0, 10).await.unwrap().is_empty());
    assert_eq!(spool.replay_cursor("labs").await.unwrap(), 0);
    spool.set_replay_cursor("labs", 2).await.unwrap();
    assert_eq!(spool.replay_cursor("labs").await.unwrap(), 2);
}

fn answer(key: &str, at_us: i64) -> sluice_log::Remembered {
    sluice_log::Remembered {
        source: "patients".into(),
        user: "hospital".into(),
        key: key.into(),
        fingerprint: "f".repeat(64),
        status: 202,
        response: r#"{"accepted":1}"#.into(),
        at_us,
    }
}

/// An answer is remembered with its records, across a reopen, and forgotten after the window.
#[tokio::test(flavor = "multi_thread")]
async fn answers_are_remembered_with_their_records_until_the_window_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let now = sluice_log::now_us();
    {
        let spool = SqliteSpool::open(SpoolConfig::new(&path)).unwrap();
        assert_eq!(spool.remembered("patients", "hospital", "k1").await.unwrap(), None);
        spool
            .append_remembered("patients", &provenance("r1"), run(vec![record("p1", "a")]), vec![answer("k1", now)])
            .await
            .unwrap();
        let old = now - 3_600_000_000;
        spool
            .append_remembered("patients", &provenance("r2"), run(vec![record("p1", "b")]), vec![answer("k2", old)])
            .await
            .unwrap();
    }
    let config = SpoolConfig { idempotency_window: std::time::Duration::from_secs(60), ..SpoolConfig::new(&path) };
    let spool = SqliteSpool::open(config).unwrap();
    assert_eq!(spool.remembered("patients", "hospital", "k1").await.unwrap(), Some(answer("k1", now)));
    assert_eq!(spool.remembered("patients", "hospital", "k2").await.unwrap(), None, "older than the window");
    assert_eq!(spool.remembered("patients", "other", "k1").await.unwrap(), None, "keys belong to their user");
    assert_eq!(spool.remembered("admissions", "hospital", "k1").await.unwrap(), None, "and to their source");
    let stored: usize = (0..4).map(|p| spool.read("patients", p, 0, 10).unwrap().len()).sum();
    assert_eq!(stored, 2);
}

/// A spool written before records were stored in runs (one row per record, no append time, no
/// kept partition ends) opens with every record, its key, provenance and offset intact.
#[tokio::test(flavor = "multi_thread")]
async fn a_spool_written_one_row_per_record_opens_with_every_record_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE records (
                source TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, key TEXT,
                content_type TEXT NOT NULL, payload BLOB NOT NULL, provenance TEXT NOT NULL,
                PRIMARY KEY (source, partition, offset)) WITHOUT ROWID;
             CREATE TABLE consumer_positions (source TEXT NOT NULL, partition INTEGER NOT NULL,
                next INTEGER NOT NULL, PRIMARY KEY (source, partition)) WITHOUT ROWID;",
        )
        .unwrap();
        for (offset, key, body, request) in
            [(0, Some("p1"), "a", "r1"), (1, None, "b", "r1"), (2, Some("p2"), "c", "r2")]
        {
            old.execute(
                "INSERT INTO records VALUES ('patients', 0, ?1, ?2, 'application/json', ?3, ?4)",
                rusqlite::params![offset, key, body.as_bytes(), serde_json::to_string(&provenance(request)).unwrap()],
            )
            .unwrap();
        }
    }
    let spool = SqliteSpool::open(SpoolConfig { partitions: 1, ..SpoolConfig::new(&path) }).unwrap();
    let stored = spool.read("patients", 0, 1, 10).unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|s| (s.position.offset, s.record.clone(), s.provenance.request_id.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (1, LogRecord { key: None, content_type: "application/json".into(), payload: b"b".to_vec() }, "r1"),
            (2, record("p2", "c"), "r2"),
        ]
    );
    assert_eq!(spool.stored_records().await.unwrap(), 3);
    let next = spool.append("patients", &provenance("r3"), run(vec![record("p3", "d")])).await.unwrap();
    assert_eq!(next, vec![Position { partition: 0, offset: 3 }]);
}

/// A request's records spread over partitions read back in order, each with its key, and a
/// consumer positioned in the middle of a run reads from there.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_several_partitions_reads_back_record_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let spool =
        SqliteSpool::open(SpoolConfig { partitions: 2, ..SpoolConfig::new(dir.path().join("spool.db")) }).unwrap();
    let records: Vec<LogRecord> = (0..40)
        .map(|i| LogRecord {
            key: (i % 3 != 0).then(|| format!("k{}", i % 7)),
            content_type: "text/csv".into(),
            payload: format!("record {i}").into_bytes(),
        })
        .collect();
    let positions = spool.append("patients", &provenance("r1"), run(records.clone())).await.unwrap();
    let mut back = Vec::new();
    for partition in 0..2 {
        back.extend(spool.read("patients", partition, 0, 100).unwrap());
    }
    for (record, position) in records.iter().zip(&positions) {
        let stored = back.iter().find(|s| s.position == *position).expect("every position reads back");
        assert_eq!(&stored.record, record);
    }
    assert_eq!(back.len(), 40);
    // Reading from the middle of a run starts at that record.
    let middle = positions[20];
    let from = spool.read("patients", middle.partition, middle.offset, 1).unwrap();
    assert_eq!(from[0].record, records[20]);
    let mut consumer = sluice_log::StreamLog::consumer(&spool, "patients").await.unwrap();
    consumer.seek(middle.partition, middle.offset).await.unwrap();
    let polled = consumer.poll(1, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(polled[0].first, middle.offset);
    assert_eq!(polled[0].run.record(0), records[20]);
    assert_eq!(
        polled.iter().map(StoredRun::len).sum::<usize>(),
        1,
        "a poll stops at its limit, in the middle of a run"
    );
    let rest = consumer.poll(100, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(rest[0].first, middle.offset + 1, "and the next one goes on from there");
    assert_eq!(
        rest[0].run.record(0),
        records
            [positions.iter().position(|p| p.partition == middle.partition && p.offset == middle.offset + 1).unwrap()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_reads_what_was_just_appended_and_what_another_process_appended_between() {
    use sluice_log::StreamLog;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let config = || SpoolConfig { partitions: 2, ..SpoolConfig::new(&path) };
    let serve = SqliteSpool::open(config()).unwrap();
    // `sluice dlq replay` appends from a process of its own, to the same file.
    let replay = SqliteSpool::open(config()).unwrap();
    let mut consumer = serve.consumer("labs").await.unwrap();
    for partition in 0..2 {
        consumer.seek(partition, 0).await.unwrap();
    }
    let mut appended = Vec::new();
    for round in 0..6 {
        let spool = if round % 3 == 1 { &replay } else { &serve };
        let records: Vec<LogRecord> =
            (0..25).map(|i| record(&format!("k{}", i % 5), &format!("{round}-{i}"))).collect();
        let positions = spool.append("labs", &provenance(&format!("r{round}")), run(records.clone())).await.unwrap();
        appended.extend(positions.into_iter().zip(records));
        if round % 2 == 1 {
            // Some rounds are read as soon as they are written, some after the next.
            let mut read = Vec::new();
            while read.len() < appended.len() {
                let polled = consumer.poll(7, std::time::Duration::from_secs(30)).await.unwrap();
                assert!(polled.iter().map(StoredRun::len).sum::<usize>() <= 7, "a poll keeps to its limit");
                read.extend(flat(&polled));
            }
            assert_eq!(read.len(), appended.len(), "nothing read twice");
            for stored in &read {
                let (_, record) = appended.iter().find(|(p, _)| *p == stored.position).expect("an appended position");
                assert_eq!(&stored.record, record);
                let from_file = serve.read("labs", stored.position.partition, stored.position.offset, 1).unwrap();
                assert_eq!(from_file[0], *stored, "the consumer hands out what the file holds");
            }
            for partition in 0..2 {
                let mut offsets: Vec<u64> =
                    read.iter().filter(|s| s.position.partition == partition).map(|s| s.position.offset).collect();
                let sorted = offsets.clone();
                offsets.sort_unstable();
                assert_eq!(offsets, sorted, "each partition in offset order");
            }
            appended.clear();
        }
    }
}
