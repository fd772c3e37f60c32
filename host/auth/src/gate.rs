//! Bounds on argon2 work: one verification at a time per set of credentials, and at most one
//! argon2 computation per core overall.
//!
//! Each argon2id computation takes ~19 MiB for tens of milliseconds. Without these bounds, the
//! moment a cached verification expires every connection using those credentials recomputes it
//! at once (eight connections: ~150 MiB in a spike), and a flood of wrong passwords from many
//! addresses could take memory without limit.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Credentials being verified right now, by cache key: a second caller with the same
/// credentials waits for the first and then finds its result in the cache.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    keys: Mutex<HashSet<[u8; 32]>>,
    done: Condvar,
}

/// The turn of one caller to verify `key`; the next caller with the same key proceeds when it
/// is dropped.
pub(crate) struct Turn<'a> {
    gate: &'a InFlight,
    key: [u8; 32],
}

impl InFlight {
    /// Waits until no other caller is verifying `key`, then takes the turn.
    pub(crate) fn enter(&self, key: [u8; 32]) -> Turn<'_> {
        let mut keys = lock(&self.keys);
        while keys.contains(&key) {
            keys = self.done.wait(keys).unwrap_or_else(|e| e.into_inner());
        }
        keys.insert(key);
        Turn { gate: self, key }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        lock(&self.gate.keys).remove(&self.key);
        self.gate.done.notify_all();
    }
}

/// A counting semaphore for argon2 computations (blocking: authentication runs on blocking
/// threads).
#[derive(Debug)]
pub(crate) struct HashSlots {
    free: Mutex<usize>,
    released: Condvar,
}

/// One argon2 computation's slot, given back when dropped.
pub(crate) struct Slot<'a>(&'a HashSlots);

impl HashSlots {
    /// `slots` computations at once (at least one).
    pub(crate) fn new(slots: usize) -> Self {
        Self { free: Mutex::new(slots.max(1)), released: Condvar::new() }
    }

    /// One slot per core.
    pub(crate) fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Waits for a free slot.
    pub(crate) fn acquire(&self) -> Slot<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.released.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }

    /// A free slot, if there is one now.
    #[cfg(test)]
    pub(crate) fn try_acquire(&self) -> Option<Slot<'_>> {
        let mut free = lock(&self.free);
        (*free > 0).then(|| {
            *free -= 1;
            Slot(self)
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.released.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn slots_are_bounded_and_come_back() {
        let slots = HashSlots::new(2);
        let first = slots.acquire();
        let second = slots.try_acquire().expect("two slots");
        assert!(slots.try_acquire().is_none(), "a third computation must wait");
        drop(first);
        let third = slots.try_acquire().expect("a slot came back");
        drop((second, third));
        assert!(HashSlots::new(0).try_acquire().is_some(), "at least one slot");
    }

    #[test]
    fn a_waiting_caller_proceeds_when_the_slot_is_given_back() {
        let slots = Arc::new(HashSlots::new(1));
        let held = slots.acquire();
        let acquired = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (slots, acquired) = (slots.clone(), acquired.clone());
            std::thread::spawn(move || {
                let _slot = slots.acquire();
                acquired.store(true, Ordering::SeqCst);
            })
        };
        assert!(!acquired.load(Ordering::SeqCst), "the only slot is held");
        drop(held);
        waiter.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
    }

    #[test]
    fn one_turn_per_key_and_keys_are_independent() {
        let gate = InFlight::default();
        let turn = gate.enter([1; 32]);
        assert!(lock(&gate.keys).contains(&[1; 32]));
        let other = gate.enter([2; 32]);
        drop(turn);
        assert!(!lock(&gate.keys).contains(&[1; 32]));
        let again = gate.enter([1; 32]);
        drop((other, again));
        assert!(lock(&gate.keys).is_empty());
    }
}
