//! The Kafka log against a real broker (`SLUICE_TEST_KAFKA`, started by tests/services/kafka.sh):
//! a request's records travel in one message per partition and come back one by one, in
//! order, with their positions; seeking into the middle of a message and committing there
//! resume at the right record.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_kafka::{KafkaConfig, KafkaLog};
use sluice_log::{
    LogConsumer, LogRecord, Position, Provenance, RecordLog, Remembered, Run, StoredRecord, StoredRun, StreamLog,
};

fn config() -> KafkaConfig {
    let brokers = std::env::var("SLUICE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!("SLUICE_TEST_KAFKA is not set: start Kafka with tests/services/kafka.sh (tests/run does)")
    });
    let unique =
        format!("kafkalog{}x{}", std::process::id(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos());
    let mut config = KafkaConfig::new(brokers);
    config.topic_prefix = format!("{unique}.");
    config.transactional_id = unique.clone();
    config.group_prefix = unique;
    config.partitions = 3;
    config
}

fn provenance(request_id: &str) -> Provenance {
    Provenance {
        source: "labs".into(),
        plugin: "labs@1.0.0".into(),
        plugin_digest: "ab".repeat(32),
        user: "alice".into(),
        received_at_us: 1_700_000_000_000_000,
        request_id: request_id.into(),
    }
}

/// One run of `records` (all JSON).
fn run(records: &[LogRecord]) -> Run {
    let mut run = Run::new("application/json");
    for record in records {
        run.push(record.key.clone(), &record.payload);
    }
    run
}

/// An answer of alice's under key `k1` for source `labs`.
fn answer() -> sluice_log::Remembered {
    sluice_log::Remembered {
        source: "labs".into(),
        user: "alice".into(),
        key: "k1".into(),
        fingerprint: "f".repeat(64),
        status: 202,
        response: r#"{"accepted":1}"#.into(),
        at_us: sluice_log::now_us(),
    }
}

fn record(key: Option<&str>, n: usize) -> LogRecord {
    LogRecord {
        key: key.map(str::to_string),
        content_type: "application/json".into(),
        payload: format!("{{\"n\":{n}}}").into_bytes(),
    }
}

/// Polls until the consumer's group assigned it every partition, then reads each from `from`.
async fn join(consumer: &mut Box<dyn LogConsumer>, from: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut owned = std::collections::BTreeSet::new();
    while owned.len() < consumer.partitions() as usize {
        assert!(std::time::Instant::now() < deadline, "the group assigned only {owned:?}");
        let polled = consumer.poll(1000, Duration::from_millis(200)).await.unwrap();
        assert!(polled.is_empty(), "records before the assignment");
        for change in consumer.ownership_changes() {
            if let sluice_log::Ownership::Assigned(partitions) = change {
                owned.extend(partitions);
            }
        }
    }
    for partition in owned {
        consumer.seek(partition, from).await.unwrap();
    }
}

/// Reads until `count` records came back (or panics after a minute).
async fn read(consumer: &mut Box<dyn LogConsumer>, count: usize, max: usize) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while out.len() < count {
        assert!(std::time::Instant::now() < deadline, "only {} of {count} records came back", out.len());
        let polled = consumer.poll(max, Duration::from_millis(200)).await.unwrap();
        let records: Vec<StoredRecord> = polled.iter().flat_map(StoredRun::records).collect();
        assert!(records.len() <= max, "a poll returned {} records, more than {max}", records.len());
        out.extend(records);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn records_of_a_request_come_back_in_order_with_their_positions() {
    let log = KafkaLog::connect(config()).await.unwrap();
    // Keys spread over the three partitions; the keyless records stay together.
    let first: Vec<LogRecord> =
        (0..40).map(|n| record(if n % 10 == 9 { None } else { Some(["p1", "p2", "p3", "p4"][n % 4]) }, n)).collect();
    let second: Vec<LogRecord> = (40..45).map(|n| record(Some("p1"), n)).collect();
    let positions_1 = log.append("labs", &provenance("req-1"), run(&first)).await.unwrap();
    let positions_2 = log.append("labs", &provenance("req-2"), run(&second)).await.unwrap();
    assert_eq!(positions_1.len(), first.len());
    let expected: BTreeMap<Position, (LogRecord, &str)> = positions_1
        .iter()
        .zip(&first)
        .map(|(p, r)| (*p, (r.clone(), "req-1")))
        .chain(positions_2.iter().zip(&second).map(|(p, r)| (*p, (r.clone(), "req-2"))))
        .collect();
    assert_eq!(expected.len(), 45, "every record has a position of its own");

    let mut consumer = log.consumer("labs").await.unwrap();
    assert_eq!(consumer.partitions(), 3);
    join(&mut consumer, 0).await;
    let read_back = read(&mut consumer, 45, 7).await;
    let mut last: BTreeMap<u32, Position> = BTreeMap::new();
    for stored in &read_back {
        let (record, request) = &expected[&stored.position];
        assert_eq!(&stored.record, record);
        assert_eq!(stored.provenance.request_id, *request);
        assert_eq!(*stored.provenance, provenance(request));
        if let Some(previous) = last.insert(stored.position.partition, stored.position) {
            assert!(previous < stored.position, "positions increase within a partition");
        }
    }
    let keys_of = |partition: u32| -> Vec<Option<String>> {
        read_back.iter().filter(|r| r.position.partition == partition).map(|r| r.record.key.clone()).collect()
    };
    for key in ["p1", "p2", "p3", "p4"] {
        let partitions: Vec<u32> = (0..3).filter(|&p| keys_of(p).iter().any(|k| k.as_deref() == Some(key))).collect();
        assert_eq!(partitions.len(), 1, "all records of {key} in one partition");
    }
    let p1: Vec<&[u8]> =
        read_back.iter().filter(|r| r.record.key.as_deref() == Some("p1")).map(|r| &r.record.payload[..]).collect();
    let sent: Vec<&[u8]> =
        first.iter().chain(&second).filter(|r| r.key.as_deref() == Some("p1")).map(|r| &r.payload[..]).collect();
    assert_eq!(p1, sent, "one key's records keep their order");

    // Resume in the middle of the first request's message for p1's partition: the records
    // before the position are skipped, the rest come back.
    let p1_positions: Vec<Position> =
        positions_1.iter().zip(&first).filter(|(_, r)| r.key.as_deref() == Some("p1")).map(|(p, _)| *p).collect();
    let resume = p1_positions[3];
    let decided =
        sluice_log::Committed { partition: resume.partition, next: resume.offset, commit: Some("o0-1-cab".into()) };
    consumer.commit(vec![decided.clone()]).await.unwrap();
    let committed = consumer.committed(vec![resume.partition]).await.unwrap();
    assert_eq!(committed, vec![decided], "the committed position keeps the index in the message and the commit");
    drop(consumer);

    // The group hands the partition over at the stored position: a new member reads from there.
    let mut again = log.consumer("labs").await.unwrap();
    join(&mut again, u64::MAX).await;
    again.seek(resume.partition, resume.offset).await.unwrap();
    let remaining = expected.keys().filter(|p| p.partition == resume.partition && **p >= resume).count();
    let reread = read(&mut again, remaining, 1000).await;
    let positions: Vec<Position> = reread.iter().map(|r| r.position).collect();
    let wanted: Vec<Position> =
        expected.keys().filter(|p| p.partition == resume.partition && **p >= resume).copied().collect();
    assert_eq!(positions, wanted);
}

/// An answer under an idempotency key is written with its records, in one transaction, even
/// when they fit in one message; a log that connects afresh (an empty index) reads it back from
/// the topic; another user's key is another answer.
#[tokio::test(flavor = "multi_thread")]
async fn answers_are_remembered_with_their_records_across_a_reconnect() {
    let config = config();
    let log = KafkaLog::connect(config.clone()).await.unwrap();
    assert_eq!(log.remembered("labs", "alice", "k1").await.unwrap(), None);
    let answer = answer();
    // A record's own id (HL7 MSH-10) is remembered beside the request's key, in the same write.
    let record_id = Remembered { user: String::new(), key: "MSG-1".into(), response: String::new(), ..answer.clone() };
    let answers = vec![answer.clone(), record_id.clone()];
    log.append_remembered("labs", &provenance("r1"), run(&[record(Some("p"), 1)]), answers).await.unwrap();
    assert_eq!(log.remembered("labs", "alice", "k1").await.unwrap(), Some(answer.clone()));
    // A request whose records were all stored before appends none, and its answer is remembered.
    let only_answer = Remembered { key: "k2".into(), ..answer.clone() };
    let positions = log
        .append_remembered("labs", &provenance("r2"), Run::new("application/json"), vec![only_answer.clone()])
        .await
        .unwrap();
    assert!(positions.is_empty());
    drop(log);

    let again = KafkaLog::connect(config).await.unwrap();
    assert_eq!(again.remembered("labs", "alice", "k1").await.unwrap(), Some(answer));
    assert_eq!(again.remembered("labs", "", "MSG-1").await.unwrap(), Some(record_id));
    assert_eq!(again.remembered("labs", "bob", "k1").await.unwrap(), None);
    assert_eq!(again.remembered("labs", "alice", "k2").await.unwrap(), Some(only_answer));
    let mut consumer = again.consumer("labs").await.unwrap();
    join(&mut consumer, 0).await;
    let records = read(&mut consumer, 1, 10).await;
    assert_eq!(records[0].record.payload, b"{\"n\":1}");
    assert_eq!(records.len(), 1, "the answer alone appended no record");
}

/// Two instances on one cluster: an answer one of them remembered is found by the other, which
/// connected before it was written (its lookup reads what the topic holds first), and a retry
/// there stores nothing new.
#[tokio::test(flavor = "multi_thread")]
async fn an_answer_given_by_one_instance_is_found_by_another() {
    let mut first = config();
    first.shared = true;
    let second = KafkaConfig { transactional_id: format!("{}-b", first.transactional_id), ..first.clone() };
    let (a, b) = (KafkaLog::connect(first).await.unwrap(), KafkaLog::connect(second).await.unwrap());
    assert_eq!(b.remembered("labs", "alice", "k1").await.unwrap(), None);
    let answer = answer();
    a.append_remembered("labs", &provenance("r1"), run(&[record(Some("p"), 1)]), vec![answer.clone()]).await.unwrap();
    assert_eq!(b.remembered("labs", "alice", "k1").await.unwrap(), Some(answer.clone()));
    assert_eq!(b.remembered("labs", "bob", "k1").await.unwrap(), None);
    // Many lookups at once share the reads.
    let lookups = (0..50).map(|_| b.remembered("labs", "alice", "k1"));
    for found in futures::future::join_all(lookups).await {
        assert_eq!(found.unwrap(), Some(answer.clone()));
    }
}

/// A run killed while one writer had a transaction open, after the other writer had committed
/// an answer behind it: a `read_committed` reader stops at the open transaction, so a fresh
/// start must end it (by starting its own transactions) before reading the answers back, or a
/// retry of that request would be appended a second time.
#[tokio::test(flavor = "multi_thread")]
async fn answers_committed_behind_a_killed_runs_open_transaction_are_remembered() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let config = config();
    drop(KafkaLog::connect(config.clone()).await.unwrap());
    let topic = config.idempotency_topic();
    let wait = Duration::from_secs(30);
    let transactional = |id: String| -> BaseProducer {
        let producer: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("transactional.id", id)
            .set("enable.idempotence", "true")
            .create()
            .unwrap();
        producer.init_transactions(wait).unwrap();
        producer.begin_transaction().unwrap();
        producer
    };
    // The killed run's first writer: a transaction begun and never ended.
    let open = transactional(config.transactional_id.clone());
    open.send(BaseRecord::to(&topic).partition(0).key("in-flight").payload("{}")).unwrap();
    open.flush(wait).unwrap();
    // Its second writer committed an answer after that.
    let answer = answer();
    let committed = transactional(format!("{}.1", config.transactional_id));
    let key = sluice_log::Remembered::log_key("labs", "alice", "k1");
    let value = serde_json::to_vec(&answer).unwrap();
    committed.send(BaseRecord::to(&topic).partition(0).key(&key).payload(&value)).unwrap();
    committed.commit_transaction(wait).unwrap();

    let restarted = KafkaLog::connect(config).await.unwrap();
    assert_eq!(restarted.remembered("labs", "alice", "k1").await.unwrap(), Some(answer));
    drop(open);
}
