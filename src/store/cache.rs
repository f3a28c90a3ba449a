//! A short-lived, per-instance cache of session states, so an authenticated read does
//! not query the database on every request.
//!
//! Correctness: every change this instance makes to accounts or sessions bumps a
//! generation number, which drops every cached entry at once, so a change is seen by
//! the very next request on this instance. Changes made by another instance (or another
//! process) are seen once the entry ages out: at most `TTL` later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::SessionState;

/// How stale a session state may be when another instance changed it.
pub const TTL: Duration = Duration::from_secs(1);
/// Past this many entries, expired ones are swept on the next insert.
const SWEEP_ABOVE: usize = 50_000;

#[derive(Default)]
pub struct SessionCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (Instant, u64, SessionState)>>,
}

impl SessionCache {
    /// The generation to stamp on a value read from the database now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Drops every entry: something about accounts or sessions changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u64, SessionState)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, session_id: &str) -> Option<SessionState> {
        let generation = self.generation();
        let entries = self.lock();
        let (at, stamp, state) = entries.get(session_id)?;
        (*stamp == generation && at.elapsed() < TTL).then(|| state.clone())
    }

    /// Keeps `state`, read while the generation was `generation`: if anything changed
    /// meanwhile, the entry is already stale and will not be served.
    pub fn put(&self, session_id: &str, generation: u64, state: SessionState) {
        let mut entries = self.lock();
        if entries.len() > SWEEP_ABOVE {
            let current = self.generation();
            entries.retain(|_, (at, stamp, _)| *stamp == current && at.elapsed() < TTL);
        }
        entries.insert(session_id.to_string(), (Instant::now(), generation, state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SessionState {
        SessionState {
            account_id: "a".into(),
            revoked_at: None,
            expires_at: 10,
            role: "reader".into(),
            status: "active".into(),
            subscription_plan: None,
            subscription_expires_at: None,
        }
    }

    #[test]
    fn a_local_change_drops_entries_at_once() {
        let cache = SessionCache::default();
        let generation = cache.generation();
        cache.put("s", generation, state());
        assert!(cache.get("s").is_some());
        cache.invalidate();
        assert!(cache.get("s").is_none());
    }

    #[test]
    fn a_value_read_across_a_change_is_never_served() {
        let cache = SessionCache::default();
        let generation = cache.generation();
        cache.invalidate(); // a change lands while the read was in flight
        cache.put("s", generation, state());
        assert!(cache.get("s").is_none());
    }

    #[test]
    fn entries_age_out() {
        let cache = SessionCache::default();
        cache.put("s", cache.generation(), state());
        std::thread::sleep(TTL + Duration::from_millis(20));
        assert!(cache.get("s").is_none());
    }
}
