//! Reading seats on the read path: a subscriber's gated read must hold a seat, and must
//! not write to the database each time. Each instance keeps, per session, the lease it
//! last wrote or the refusal it last read (see `paywall::seats` for the rules):
//!
//! - a held seat is served from here until its lease ends; once a refresh interval has
//!   passed since it was written, one read writes it again (the others keep reading);
//! - a refusal is served from here until the first of the other sessions' leases ends,
//!   the earliest moment a seat can free itself.
//!
//! Anything else that frees or moves a seat (a take-over, a sign-out, a plan or
//! subscription change) bumps the sessions version, which drops these entries with the
//! session states: on this instance at once, on every other at the displaced session's
//! next request (the session fence, PostgreSQL) or poll (SQLite, one instance). So a
//! take-over binds on the next request wherever it lands, and two sessions racing for
//! one seat are decided by the database, one claim at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::cache::TtlCache;
use crate::metrics::{self, Seat};
use crate::paywall::seats::{lease_until, refresh_every, Claim};
use crate::paywall::SeatVerdict;
use crate::store::seats::SeatClaim;
use crate::store::{Store, StoreError};

/// Sessions whose seat this instance remembers at most.
const ENTRIES: usize = 100_000;

/// What this instance knows of one session's seat.
#[derive(Debug)]
pub struct Lease {
    holds: bool,
    /// When the lease was written (for a hold).
    written_at: i64,
    /// Until when this entry is true: the lease's end, or the refusal's.
    until: i64,
    /// A read is writing this lease again.
    refreshing: AtomicBool,
}

/// Locks that sessions' claims on a miss take, a session always the same one: of the
/// reads of one session that miss at once (after the cache is dropped, say), one claims
/// and the others find its lease, rather than each writing one.
const CLAIM_LOCKS: usize = 64;

pub struct Seats {
    cache: TtlCache<Arc<Lease>>,
    claiming: Vec<tokio::sync::Mutex<()>>,
}

impl Default for Seats {
    fn default() -> Self {
        Seats {
            cache: TtlCache::new(ENTRIES),
            claiming: (0..CLAIM_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }
}

impl Seats {
    /// Forgets every session's seat: something that frees or moves seats has changed.
    pub fn invalidate(&self) {
        self.cache.invalidate();
    }

    /// Whether `claim.session_id` may read gated text now (`claim.take_over` false):
    /// from what this instance knows when it is still true, else by a claim in the
    /// database.
    pub async fn check(
        &self,
        store: &Store,
        claim: &SeatClaim<'_>,
    ) -> Result<SeatVerdict, StoreError> {
        let generation = self.cache.generation();
        let known = self.cache.get(claim.session_id);
        if let Some(verdict) = known_verdict(known.as_deref(), claim) {
            return Ok(verdict);
        }
        // A miss (or an entry no longer true): one read of this session at a time
        // claims; a read that waited for the lock finds the entry the one before it put.
        if known.as_ref().is_none_or(|lease| claim.now >= lease.until) {
            let _claiming = self.claiming[lock_of(claim.session_id)].lock().await;
            let generation = self.cache.generation();
            let found = self.cache.get(claim.session_id);
            if let Some(verdict) = known_verdict(found.as_deref(), claim) {
                return Ok(verdict);
            }
            return self.claim_or_keep(store, claim, generation, found).await;
        }
        // This read won the lease's rewrite.
        self.claim_or_keep(store, claim, generation, known).await
    }

    /// Claims; if the database fails while the lease `known` (written before) still
    /// runs, the seat is this session's until then whatever the database says now.
    async fn claim_or_keep(
        &self,
        store: &Store,
        claim: &SeatClaim<'_>,
        generation: u64,
        known: Option<Arc<Lease>>,
    ) -> Result<SeatVerdict, StoreError> {
        match self.claim(store, claim, generation).await {
            Ok(verdict) => Ok(verdict),
            Err(error) => match known.filter(|lease| lease.holds && claim.now < lease.until) {
                Some(lease) => {
                    lease.refreshing.store(false, Ordering::Release);
                    tracing::warn!(%error, "a reading seat's lease could not be written again");
                    Ok(SeatVerdict::Held)
                }
                None => Err(error),
            },
        }
    }

    /// "Continue reading here": takes a seat, from the session that has held one
    /// longest when none is free.
    pub async fn take(&self, store: &Store, claim: &SeatClaim<'_>) -> Result<Claim, StoreError> {
        let generation = self.cache.generation();
        let claimed = store.claim_seat(claim).await?;
        self.remember(claim, generation, &claimed);
        Ok(claimed)
    }

    async fn claim(
        &self,
        store: &Store,
        claim: &SeatClaim<'_>,
        generation: u64,
    ) -> Result<SeatVerdict, StoreError> {
        let claimed = store.claim_seat(claim).await?;
        self.remember(claim, generation, &claimed);
        Ok(match claimed {
            Claim::Refused { .. } => SeatVerdict::Elsewhere,
            _ => SeatVerdict::Held,
        })
    }

    fn remember(&self, claim: &SeatClaim<'_>, generation: u64, claimed: &Claim) {
        let (holds, until) = match claimed {
            Claim::Refused { until } => {
                metrics::seat(Seat::Refused);
                (false, *until)
            }
            Claim::Refresh { .. } => {
                metrics::seat(Seat::Refreshed);
                (true, lease_until(claim.now, claim.hold_secs))
            }
            Claim::Take { displaced, .. } => {
                metrics::seat(if displaced.is_some() {
                    Seat::TakenOver
                } else {
                    Seat::Claimed
                });
                (true, lease_until(claim.now, claim.hold_secs))
            }
        };
        let lease = Arc::new(Lease {
            holds,
            written_at: claim.now,
            until,
            refreshing: AtomicBool::new(false),
        });
        // Put under the generation read before the claim: if anything moved seats
        // meanwhile, the entry is stale at once and the next read claims again.
        self.cache.put(claim.session_id, generation, lease, 1);
    }
}

/// What a remembered entry answers, if it still does: a refusal, or a held seat (and
/// whether this read must write the lease again: then none, and this read claims).
fn known_verdict(known: Option<&Lease>, claim: &SeatClaim<'_>) -> Option<SeatVerdict> {
    let lease = known.filter(|lease| claim.now < lease.until)?;
    if !lease.holds {
        metrics::seat(Seat::Refused);
        return Some(SeatVerdict::Elsewhere);
    }
    let due = claim.now >= lease.written_at + refresh_every(claim.hold_secs);
    // One read writes the lease again; the others read on under the lease that still
    // runs.
    if !due || lease.refreshing.swap(true, Ordering::AcqRel) {
        return Some(SeatVerdict::Held);
    }
    None
}

fn lock_of(session_id: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(session_id);
    usize::try_from(hash % CLAIM_LOCKS as u64).unwrap_or(0)
}
