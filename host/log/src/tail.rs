//! The runs the spool's writer committed last, kept in memory for the stream, so that it does
//! not read back from SQLite (a query, a `pread` per page, a copy of every payload) what was
//! written there a moment ago.
//!
//! A cache and nothing more: a run enters it only once its transaction has committed, with the
//! same records, positions and provenance the file holds; what it does not hold (runs evicted
//! to stay within its budget, runs another process appended, a consumer that seeks back) is read
//! from the file as before. Runs are moved out when a consumer takes them, not copied.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::record::StoredRun;

/// How many bytes of runs the tail holds at most: enough for what the stream reads in one poll
/// a few times over, small beside sluice's memory target.
pub(crate) const TAIL_BUDGET: usize = 8 * 1024 * 1024;

/// The recently committed runs of every source and partition.
pub(crate) struct Tail {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    budget: usize,
    held: usize,
    /// Per source, per partition, runs in offset order, each with when it was pushed.
    runs: HashMap<String, Vec<VecDeque<(u64, StoredRun)>>>,
    /// How many runs were pushed: the next one's number.
    pushed: u64,
}

/// What a run counts against the budget.
fn bytes(run: &StoredRun) -> usize {
    run.run.payloads.len() + run.len() * (4 + std::mem::size_of::<Option<String>>())
}

impl Tail {
    /// An empty tail holding at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self { inner: Mutex::new(Inner { budget, ..Inner::default() }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds runs of `source` just committed (each partition's in offset order), evicting the
    /// oldest runs past the budget.
    pub fn push(&self, source: &str, runs: Vec<StoredRun>) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let queues = match inner.runs.get_mut(source) {
            Some(queues) => queues,
            None => inner.runs.entry(source.to_string()).or_default(),
        };
        for run in runs.into_iter().filter(|run| !run.is_empty()) {
            let partition = run.partition as usize;
            if queues.len() <= partition {
                queues.resize_with(partition + 1, VecDeque::new);
            }
            inner.held += bytes(&run);
            queues[partition].push_back((inner.pushed, run));
            inner.pushed += 1;
        }
        inner.evict();
    }

    /// Up to `max` records of `source`'s `partition` from offset `from` on, taken out of the
    /// tail, when it holds the record at `from`; `None` when it does not (read the file then).
    /// The runs returned are contiguous and start exactly at `from`.
    pub fn take(&self, source: &str, partition: u32, from: u64, max: usize) -> Option<Vec<StoredRun>> {
        let mut inner = self.lock();
        let Inner { held, runs, .. } = &mut *inner;
        let queue = runs.get_mut(source)?.get_mut(partition as usize)?;
        // What the consumer has passed is of no more use.
        while queue.front().is_some_and(|(_, run)| run.end() <= from) {
            let (_, run) = queue.pop_front().expect("checked");
            *held -= bytes(&run);
        }
        if queue.front().is_none_or(|(_, run)| run.first > from) {
            return None;
        }
        let mut out: Vec<StoredRun> = Vec::new();
        let mut records = 0;
        while records < max {
            let Some((pushed, mut run)) = queue.pop_front() else { break };
            let expected = out.last().map_or(from, StoredRun::end);
            if run.first > expected {
                // A gap (records appended by another process): the file has them.
                queue.push_front((pushed, run));
                break;
            }
            *held -= bytes(&run);
            if run.first < expected {
                let skip = (expected - run.first) as usize;
                run = StoredRun { first: expected, run: run.run.tail(skip), ..run };
            }
            if records + run.len() > max {
                let rest = run.split_off(max - records);
                *held += bytes(&rest);
                queue.push_front((pushed, rest));
            }
            records += run.len();
            out.push(run);
        }
        Some(out)
    }

    /// Bytes held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.lock().held
    }
}

impl Inner {
    /// Drops the oldest runs (the lowest push numbers, always at the front of their queue)
    /// until the budget holds.
    fn evict(&mut self) {
        while self.held > self.budget {
            let oldest = self
                .runs
                .values_mut()
                .flat_map(|queues| queues.iter_mut())
                .filter_map(|queue| Some((queue.front()?.0, queue)))
                .min_by_key(|(pushed, _)| *pushed);
            let Some((_, queue)) = oldest else { break };
            let (_, run) = queue.pop_front().expect("a front was found");
            self.held -= bytes(&run);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::record::{Provenance, Run};

    fn stored(partition: u32, first: u64, count: usize) -> StoredRun {
        let mut run = Run::new("application/json");
        for i in 0..count {
            run.push(Some(format!("k{i}")), format!("{{\"n\":{}}}", first + i as u64).as_bytes());
        }
        let provenance = Provenance {
            source: "s".into(),
            plugin: "p@1.0.0".into(),
            plugin_digest: "d".into(),
            user: "u".into(),
            received_at_us: 0,
            request_id: "r".into(),
        };
        StoredRun { partition, first, run, provenance: Arc::new(provenance) }
    }

    fn offsets(runs: &[StoredRun]) -> Vec<(u64, usize)> {
        runs.iter().map(|r| (r.first, r.len())).collect()
    }

    #[test]
    fn runs_are_taken_from_the_consumers_position_up_to_the_limit() {
        let tail = Tail::new(TAIL_BUDGET);
        tail.push("s", vec![stored(0, 0, 3), stored(1, 0, 2)]);
        tail.push("s", vec![stored(0, 3, 3)]);
        assert_eq!(tail.take("other", 0, 0, 10), None);
        assert_eq!(offsets(&tail.take("s", 0, 0, 4).unwrap()), [(0, 3), (3, 1)]);
        // The rest of the split run stays, positioned after what was taken.
        let rest = tail.take("s", 0, 4, 10).unwrap();
        assert_eq!(offsets(&rest), [(4, 2)]);
        assert_eq!(rest[0].run.payload(0), b"{\"n\":4}");
        assert_eq!(rest[0].run.key(1), Some("k2"));
        assert_eq!(tail.take("s", 0, 6, 10), None, "nothing past the end");
        assert_eq!(offsets(&tail.take("s", 1, 0, 10).unwrap()), [(0, 2)]);
        assert_eq!(tail.held(), 0);
    }

    #[test]
    fn a_position_the_tail_does_not_hold_is_left_to_the_file() {
        let tail = Tail::new(TAIL_BUDGET);
        tail.push("s", vec![stored(0, 10, 5)]);
        assert_eq!(tail.take("s", 0, 7, 10), None, "records before the tail's first");
        // Inside a run: the records from there on.
        let runs = tail.take("s", 0, 12, 10).unwrap();
        assert_eq!(offsets(&runs), [(12, 3)]);
        assert_eq!(runs[0].run.payload(0), b"{\"n\":12}");
    }

    #[test]
    fn a_gap_ends_what_is_taken() {
        let tail = Tail::new(TAIL_BUDGET);
        // Offsets 3..5 were appended by another process.
        tail.push("s", vec![stored(0, 0, 3), stored(0, 5, 2)]);
        assert_eq!(offsets(&tail.take("s", 0, 0, 10).unwrap()), [(0, 3)]);
        assert_eq!(tail.take("s", 0, 3, 10), None);
        assert_eq!(offsets(&tail.take("s", 0, 5, 10).unwrap()), [(5, 2)]);
    }

    #[test]
    fn the_oldest_runs_leave_first_past_the_budget() {
        let one = bytes(&stored(0, 0, 4));
        let tail = Tail::new(2 * one);
        tail.push("s", vec![stored(0, 0, 4), stored(1, 0, 4)]);
        tail.push("s", vec![stored(0, 4, 4)]);
        assert!(tail.held() <= 2 * one);
        assert_eq!(tail.take("s", 0, 0, 10), None, "evicted: read from the file");
        assert_eq!(offsets(&tail.take("s", 1, 0, 10).unwrap()), [(0, 4)]);
        assert_eq!(offsets(&tail.take("s", 0, 4, 10).unwrap()), [(4, 4)]);
        assert_eq!(tail.held(), 0);
    }
}
