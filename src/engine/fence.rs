//! A read fence over the `sessions` version row, for several instances on PostgreSQL:
//! before a request trusts this instance's cache of session states, a read of the
//! version row that began after the request arrived must have come back, and must have
//! dropped the cache if another instance changed any session meanwhile. So a sign-out,
//! suspension or subscription change made through any instance holds at the next
//! request on every instance, as if each request read its session from the database.
//!
//! One query serves every request that arrived before it was sent: under load the
//! queries run back to back and each answers a whole batch of requests, so a request
//! costs a share of a round trip rather than one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::store::StoreError;

/// The outcome of the latest finished check: the number of the last request it covers,
/// and whether the version could be read.
#[derive(Debug, Clone, Copy)]
struct Checked {
    covers: u64,
    ok: bool,
}

pub struct Fence {
    /// Requests numbered in arrival order.
    requested: AtomicU64,
    wake: Notify,
    checked: watch::Sender<Checked>,
}

impl Fence {
    /// Starts the task that reads the version with `read_version` and calls
    /// `changed` (which drops the cache) whenever the value differs from the last one.
    pub fn start<R, F>(read_version: R, changed: impl Fn() + Send + 'static) -> Arc<Fence>
    where
        R: Fn() -> F + Send + 'static,
        F: std::future::Future<Output = Result<i64, StoreError>> + Send,
    {
        let (checked, _) = watch::channel(Checked {
            covers: 0,
            ok: true,
        });
        let fence = Arc::new(Fence {
            requested: AtomicU64::new(0),
            wake: Notify::new(),
            checked,
        });
        // The task lives as long as the runtime (the process, for a server).
        let worker = fence.clone();
        tokio::spawn(async move {
            let fence = worker;
            let mut seen: Option<i64> = None;
            loop {
                let covers = fence.requested.load(Ordering::Acquire);
                if covers == fence.checked.borrow().covers {
                    // Nothing waits: sleep until a request arrives (a permit is kept if
                    // one arrived since the load above).
                    fence.wake.notified().await;
                    continue;
                }
                // Every request numbered up to `covers` arrived before this read.
                let result = read_version().await;
                let ok = match result {
                    Ok(version) => {
                        if seen.is_some_and(|old| old != version) {
                            changed();
                        }
                        seen = Some(version);
                        true
                    }
                    Err(error) => {
                        tracing::warn!(%error, "reading the sessions version failed");
                        // What changed meanwhile is unknown: start again from nothing.
                        changed();
                        seen = None;
                        false
                    }
                };
                fence.checked.send_replace(Checked { covers, ok });
            }
        });
        fence
    }

    /// Returns once a version read that began after this call has come back (and the
    /// cache has been dropped if the version moved). Fails when that read failed.
    pub async fn pass(&self) -> Result<(), StoreError> {
        let ticket = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut checked = self.checked.subscribe();
        self.wake.notify_one();
        let outcome = *checked
            .wait_for(|c| c.covers >= ticket)
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        if outcome.ok {
            Ok(())
        } else {
            Err(StoreError::Database(sqlx::Error::PoolTimedOut))
        }
    }
}
