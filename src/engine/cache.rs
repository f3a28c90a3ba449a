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
//!
//! When the budget is full, stale entries make room first, then the oldest ones not
//! read since they were put or last passed over (a second chance, as in a clock). The
//! article cache also has a doorkeeper: once full, it takes in only an article missed
//! before, recently. Readers of a news site crowd onto a few stories,
//! and the rest of the archive is read once in a long while (a crawler, an old link):
//! without it each of those reads pushed out an article read every second, and paid
//! for keeping what was never read again (bench/RESULTS.md).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often each instance reads the version rows.
pub const POLL: Duration = Duration::from_millis(250);
/// How long an entry lives at most, whatever the versions say.
pub const TTL: Duration = Duration::from_secs(30);
/// How often a full cache looks through all its entries for stale ones, at most (and
/// after each change): a look costs a pass over every entry.
const SWEEP: Duration = Duration::from_secs(1);

struct Entry<V> {
    at: Instant,
    generation: u64,
    weight: usize,
    /// The entry's place in `Inner::order`.
    serial: u64,
    /// Served since it was put, or since its last second chance.
    used: bool,
    value: V,
}

struct Inner<V> {
    entries: HashMap<Arc<str>, Entry<V>>,
    /// Keys in the order they were put, with the serial each was put under (an entry
    /// put again has a newer one; its older places are skipped).
    order: VecDeque<(Arc<str>, u64)>,
    serial: u64,
    weight: usize,
    /// When stale entries were last swept out, and at which generation.
    swept: (Instant, u64),
    doorkeeper: Option<Doorkeeper>,
}

pub struct TtlCache<V> {
    generation: AtomicU64,
    inner: Mutex<Inner<V>>,
    /// The total weight (entries, or bytes) kept at most (see `set_budget`).
    budget: AtomicUsize,
}

impl<V: Clone> TtlCache<V> {
    /// A cache that takes in every value it is given, making room for it.
    pub fn new(budget: usize) -> Self {
        Self::build(budget, None)
    }

    /// A cache that, once full, takes in only a key missed before among the last
    /// `window` or so keys it turned away.
    pub fn with_doorkeeper(budget: usize, window: usize) -> Self {
        Self::build(budget, Some(Doorkeeper::new(window)))
    }

    fn build(budget: usize, doorkeeper: Option<Doorkeeper>) -> Self {
        TtlCache {
            generation: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                serial: 0,
                weight: 0,
                swept: (Instant::now(), 0),
                doorkeeper,
            }),
            budget: AtomicUsize::new(budget),
        }
    }

    /// What the cache may hold from now on; lowered, it lets go of what is over at
    /// once (stale entries first, then the oldest not read lately), and returns how
    /// much it let go of. The tables that held them shrink to what is left: a table
    /// never shrinks by itself, and the page cache's, sized for its 2,500 pages, held
    /// 0.8 MiB while hashing had left it room for a few hundred (bench/RESULTS.md).
    pub fn set_budget(&self, budget: usize) -> usize {
        self.budget.store(budget, Ordering::Release);
        let current = self.generation();
        let mut evicted = Vec::new();
        let mut inner = self.lock();
        if inner.weight > budget {
            inner.sweep_now(current, &mut evicted);
            inner.evict_oldest(0, budget, &mut evicted);
            inner.entries.shrink_to_fit();
            inner.order.shrink_to_fit();
        }
        drop(inner);
        evicted.iter().map(|entry| entry.weight).sum()
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
        let mut inner = self.lock();
        let entry = inner.entries.get_mut(key)?;
        if entry.generation != generation || entry.at.elapsed() >= TTL {
            return None;
        }
        entry.used = true;
        Some(entry.value.clone())
    }

    /// Keeps `value`, read while the generation was `generation`: if anything changed
    /// meanwhile, the entry is already stale and will not be served. A value heavier
    /// than the whole budget is not kept; nor, when the cache is full and has a
    /// doorkeeper, is a key the doorkeeper has not seen lately (it is remembered, so
    /// that the next miss of it gets in).
    pub fn put(&self, key: &str, generation: u64, value: V, weight: usize) {
        let budget = self.budget.load(Ordering::Acquire);
        if weight > budget {
            return;
        }
        let current = self.generation();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let old = inner.entries.get(key).map_or(0, |e| e.weight);
        let needed = weight.saturating_sub(old);
        // What goes is dropped after the lock is given back.
        let mut evicted = Vec::new();
        if inner.weight + needed > budget {
            inner.sweep(current, &mut evicted);
        }
        if inner.weight + needed > budget {
            let turned_away = old == 0
                && inner
                    .doorkeeper
                    .as_mut()
                    .is_some_and(|d| !d.admits(inner.entries.hasher().hash_one(key)));
            if turned_away {
                drop(guard);
                drop(evicted);
                return;
            }
            inner.evict_oldest(needed, budget, &mut evicted);
        }
        inner.insert(key, generation, value, weight);
        drop(guard);
        drop(evicted);
    }
}

impl<V> Inner<V> {
    fn insert(&mut self, key: &str, generation: u64, value: V, weight: usize) {
        self.serial += 1;
        let key: Arc<str> = Arc::from(key);
        let entry = Entry {
            at: Instant::now(),
            generation,
            weight,
            serial: self.serial,
            used: false,
            value,
        };
        self.order.push_back((key.clone(), self.serial));
        if let Some(old) = self.entries.insert(key, entry) {
            self.weight -= old.weight;
        }
        self.weight += weight;
        // Each put again leaves an older place behind; they go once they are half.
        if self.order.len() > 2 * self.entries.len() + 64 {
            self.forget_old_places();
        }
    }

    fn forget_old_places(&mut self) {
        let entries = &self.entries;
        self.order
            .retain(|(key, serial)| entries.get(key).is_some_and(|e| e.serial == *serial));
    }

    /// Removes the stale entries, when none were looked for since the last change or
    /// for `SWEEP`.
    fn sweep(&mut self, current: u64, evicted: &mut Vec<Entry<V>>) {
        if self.swept.1 == current && self.swept.0.elapsed() < SWEEP {
            return;
        }
        self.sweep_now(current, evicted);
    }

    /// Removes the stale entries.
    fn sweep_now(&mut self, current: u64, evicted: &mut Vec<Entry<V>>) {
        let stale: Vec<Arc<str>> = self
            .entries
            .iter()
            .filter(|(_, e)| e.generation != current || e.at.elapsed() >= TTL)
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            if let Some(entry) = self.entries.remove(&key) {
                self.weight -= entry.weight;
                evicted.push(entry);
            }
        }
        self.forget_old_places();
        self.swept = (Instant::now(), current);
    }

    /// Removes the oldest entries until `weight` more fits in `budget`; one served
    /// since it was put, or since it was last passed over, goes to the back instead
    /// (a second chance), so what readers read stays and what they do not goes.
    fn evict_oldest(&mut self, weight: usize, budget: usize, evicted: &mut Vec<Entry<V>>) {
        while self.weight + weight > budget {
            let Some((key, serial)) = self.order.pop_front() else {
                break;
            };
            match self.entries.get_mut(&key) {
                Some(entry) if entry.serial == serial && entry.used => {
                    entry.used = false;
                    self.order.push_back((key, serial));
                }
                Some(entry) if entry.serial == serial => {
                    if let Some(entry) = self.entries.remove(&key) {
                        self.weight -= entry.weight;
                        evicted.push(entry);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Which keys were turned away lately: a filter of 2 bits a key over `16 x window`
/// bits, cleared after `window` keys (under 1.5% of other keys pass as seen).
struct Doorkeeper {
    bits: Vec<u64>,
    recorded: usize,
    window: usize,
}

impl Doorkeeper {
    fn new(window: usize) -> Self {
        let words = (window * 16).div_ceil(64).next_power_of_two();
        Doorkeeper {
            bits: vec![0; words],
            recorded: 0,
            window,
        }
    }

    /// Whether `hash` was recorded since the last clearing; if not, it is now.
    fn admits(&mut self, hash: u64) -> bool {
        let positions = [hash as u32, (hash >> 32) as u32];
        let mask = self.bits.len() * 64 - 1;
        let seen = positions.iter().all(|&p| {
            let p = p as usize & mask;
            self.bits[p / 64] & (1 << (p % 64)) != 0
        });
        if !seen {
            if self.recorded == self.window {
                self.bits.fill(0);
                self.recorded = 0;
            }
            for p in positions {
                let p = p as usize & mask;
                self.bits[p / 64] |= 1 << (p % 64);
            }
            self.recorded += 1;
        }
        seen
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
        let inner = cache.lock();
        assert_eq!(
            inner.weight,
            inner.entries.values().map(|e| e.weight).sum::<usize>()
        );
    }

    #[test]
    fn a_lowered_budget_lets_go_at_once_and_a_raised_one_takes_in_again() {
        let cache = TtlCache::new(100);
        for i in 0..10 {
            cache.put(&i.to_string(), cache.generation(), i, 10);
        }
        assert_eq!(cache.get("9"), Some(9));
        let freed = cache.set_budget(35);
        assert_eq!(freed, 70);
        assert!(cache.lock().weight <= 35);
        assert_eq!(cache.get("9"), Some(9), "the one read lately stays");
        assert_eq!(cache.get("0"), None, "the oldest went");
        cache.put("big", cache.generation(), 0, 40);
        assert_eq!(cache.get("big"), None, "heavier than the budget now");
        assert_eq!(cache.set_budget(100), 0);
        for i in 10..20 {
            cache.put(&i.to_string(), cache.generation(), i, 10);
        }
        assert_eq!(
            cache.lock().weight,
            100,
            "full again at the budget given back"
        );
    }

    #[test]
    fn a_lowered_budget_shrinks_the_tables_that_held_the_entries() {
        let cache = TtlCache::new(10_000);
        for i in 0..5_000 {
            cache.put(&i.to_string(), cache.generation(), i, 1);
        }
        let (table, places) = {
            let inner = cache.lock();
            (inner.entries.capacity(), inner.order.capacity())
        };
        assert!(table >= 5_000 && places >= 5_000);
        cache.set_budget(100);
        let inner = cache.lock();
        assert!(inner.entries.len() <= 100);
        assert!(
            inner.entries.capacity() < table / 16 && inner.order.capacity() < places / 16,
            "a table sized for 5,000 entries holds {} of them now: {} and {} places kept",
            inner.entries.len(),
            inner.entries.capacity(),
            inner.order.capacity()
        );
    }

    #[test]
    fn a_full_cache_makes_room_by_age_keeping_the_rest() {
        let cache = TtlCache::new(100);
        for i in 0..10 {
            cache.put(&i.to_string(), cache.generation(), i, 10);
        }
        // "0" is put again: it is now the newest.
        cache.put("0", cache.generation(), 0, 10);
        cache.put("new", cache.generation(), 99, 25);
        for gone in ["1", "2", "3"] {
            assert_eq!(cache.get(gone), None, "{gone} was among the oldest");
        }
        for kept in ["0", "4", "9", "new"] {
            assert!(cache.get(kept).is_some(), "{kept} is kept");
        }
        assert_eq!(cache.lock().weight, 95);
    }

    #[test]
    fn stale_entries_make_room_before_fresh_ones() {
        let cache = TtlCache::new(100);
        for i in 0..5 {
            cache.put(&format!("old{i}"), cache.generation(), i, 10);
        }
        cache.invalidate();
        for i in 0..5 {
            cache.put(&format!("new{i}"), cache.generation(), i, 10);
        }
        cache.put("last", cache.generation(), 0, 50);
        for i in 0..5 {
            assert!(cache.get(&format!("new{i}")).is_some());
        }
        assert!(cache.get("last").is_some());
        let inner = cache.lock();
        assert_eq!(
            inner.entries.len(),
            6,
            "every stale entry went, and only they"
        );
        assert_eq!(inner.order.len(), 6);
    }

    #[test]
    fn the_doorkeeper_lets_in_a_key_missed_twice_once_full() {
        let cache = TtlCache::with_doorkeeper(30, 64);
        for key in ["a", "b", "c"] {
            cache.put(key, cache.generation(), 1, 10);
        }
        // Full: a first miss is remembered, not kept; the next one gets in.
        cache.put("d", cache.generation(), 2, 10);
        assert_eq!(cache.get("d"), None);
        assert!(cache.get("a").is_some(), "nothing made room for it");
        cache.put("d", cache.generation(), 2, 10);
        assert_eq!(cache.get("d"), Some(2));
        assert_eq!(
            cache.get("b"),
            None,
            "the oldest not served since made room"
        );
        assert!(cache.get("a").is_some(), "served: passed over");
        // A key already kept is replaced whatever the doorkeeper says.
        cache.put("c", cache.generation(), 3, 10);
        assert_eq!(cache.get("c"), Some(3));
    }

    #[test]
    fn a_crawl_of_an_archive_leaves_the_read_articles_in_place() {
        // 100 articles read all the time fill the cache; then a crawl reads 100,000
        // others once each, and the 100 are read again between its reads. Returns how
        // often those 100 missed.
        fn crawl(cache: &TtlCache<u8>) -> usize {
            let hot: Vec<String> = (0..100).map(|i| format!("hot-{i}")).collect();
            for key in &hot {
                cache.put(key, cache.generation(), 0, 10);
            }
            let mut misses = 0;
            for i in 0..100_000 {
                cache.put(&format!("archive-{i}"), cache.generation(), 0, 10);
                let key = &hot[i % hot.len()];
                if cache.get(key).is_none() {
                    misses += 1;
                    cache.put(key, cache.generation(), 0, 10);
                }
            }
            misses
        }
        let misses = crawl(&TtlCache::with_doorkeeper(1_000, 1_000));
        assert!(misses < 5_000, "{misses} misses of the read articles");
        // Without the doorkeeper, every crawled article got in and the 100 were pushed
        // out again and again.
        let without = crawl(&TtlCache::new(1_000));
        assert!(without > 40_000, "{without}");
    }

    #[test]
    fn putting_the_same_keys_again_and_again_keeps_the_order_small() {
        let cache = TtlCache::new(1_000);
        for round in 0..10_000 {
            cache.put(&(round % 10).to_string(), cache.generation(), round, 1);
            if round % 100 == 0 {
                cache.invalidate();
            }
        }
        let inner = cache.lock();
        assert_eq!(inner.entries.len(), 10);
        assert!(inner.order.len() <= 2 * 10 + 64, "{}", inner.order.len());
    }

    #[test]
    fn the_doorkeeper_forgets_after_its_window() {
        // The same keys every run (SipHash with fixed keys), spread as the cache's own.
        let hasher =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let mut doorkeeper = Doorkeeper::new(1_000);
        let seven = hasher.hash_one("seven");
        assert!(!doorkeeper.admits(seven));
        assert!(doorkeeper.admits(seven));
        let mut passed = 0;
        for i in 0..1_000 {
            passed += usize::from(doorkeeper.admits(hasher.hash_one(i)));
        }
        assert!(passed <= 15, "{passed} of 1,000 unseen keys passed as seen");
        assert!(doorkeeper.admits(seven), "remembered within the window");
        // Keys until the window is full and one more is turned away: it clears the rest.
        let mut i = 1_000;
        loop {
            let full = doorkeeper.recorded == doorkeeper.window;
            doorkeeper.admits(hasher.hash_one(i));
            i += 1;
            if full && doorkeeper.recorded == 1 {
                break;
            }
        }
        assert!(
            !doorkeeper.admits(seven),
            "cleared after 1,000 keys: new again"
        );
    }
}
