//! Short-lived, per-instance caches of what every request reads (session states and
//! published articles), so the hot path does not query the database each time.
//!
//! Correctness: every change this instance makes bumps the cache's generation, which
//! drops every entry at once, so a change is seen by the very next request on this
//! instance. Every change also bumps a version row in the database, which each instance
//! polls every `POLL`: changes made by another instance (or a command-line import) are
//! seen within that interval. Entries also age out after `TTL`, a backstop for writes
//! made to the database by hand. With several instances (PostgreSQL), session states
//! are not left to the poll: every request passes a read fence on the sessions version
//! first (see `fence`), so a change made anywhere holds at the next request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often each instance reads the version rows.
pub const POLL: Duration = Duration::from_millis(250);
/// How long an entry lives at most, whatever the versions say.
pub const TTL: Duration = Duration::from_secs(30);

struct Entry<V> {
    at: Instant,
    generation: u64,
    weight: usize,
    value: V,
}

struct Inner<V> {
    entries: HashMap<String, Entry<V>>,
    weight: usize,
}

pub struct TtlCache<V> {
    generation: AtomicU64,
    inner: Mutex<Inner<V>>,
    /// Past this total weight (entries, or bytes), stale entries are swept, then all.
    budget: usize,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(budget: usize) -> Self {
        TtlCache {
            generation: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                weight: 0,
            }),
            budget,
        }
    }

    /// The generation to stamp on a value read from the database now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Drops every entry: what they hold may have changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let generation = self.generation();
        let inner = self.lock();
        let entry = inner.entries.get(key)?;
        (entry.generation == generation && entry.at.elapsed() < TTL).then(|| entry.value.clone())
    }

    /// Keeps `value`, read while the generation was `generation`: if anything changed
    /// meanwhile, the entry is already stale and will not be served.
    pub fn put(&self, key: &str, generation: u64, value: V, weight: usize) {
        let current = self.generation();
        let mut inner = self.lock();
        if inner.weight + weight > self.budget {
            inner
                .entries
                .retain(|_, e| e.generation == current && e.at.elapsed() < TTL);
            if inner.entries.values().map(|e| e.weight).sum::<usize>() + weight > self.budget {
                inner.entries.clear();
            }
            inner.weight = inner.entries.values().map(|e| e.weight).sum();
        }
        if weight > self.budget {
            return;
        }
        let entry = Entry {
            at: Instant::now(),
            generation,
            weight,
            value,
        };
        if let Some(old) = inner.entries.insert(key.to_string(), entry) {
            inner.weight -= old.weight;
        }
        inner.weight += weight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_change_drops_entries_at_once() {
        let cache = TtlCache::new(10);
        cache.put("s", cache.generation(), 1, 1);
        assert_eq!(cache.get("s"), Some(1));
        cache.invalidate();
        assert_eq!(cache.get("s"), None);
    }

    #[test]
    fn a_value_read_across_a_change_is_never_served() {
        let cache = TtlCache::new(10);
        let generation = cache.generation();
        cache.invalidate(); // a change lands while the read was in flight
        cache.put("s", generation, 1, 1);
        assert_eq!(cache.get("s"), None);
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let cache = TtlCache::new(100);
        for i in 0..50 {
            cache.put(&i.to_string(), cache.generation(), i, 10);
        }
        assert!(cache.lock().weight <= 100);
        assert!(cache.lock().entries.len() <= 10);
        cache.put("huge", cache.generation(), 0, 1_000);
        assert_eq!(cache.get("huge"), None, "larger than the budget: not kept");
        // Replacing an entry does not count it twice.
        cache.put("x", cache.generation(), 1, 10);
        cache.put("x", cache.generation(), 2, 10);
        assert_eq!(cache.get("x"), Some(2));
        assert!(cache.lock().weight <= 100);
    }
}
