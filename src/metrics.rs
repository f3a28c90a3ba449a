//! Counters of what the paywall decided, for the operations endpoints to expose.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::paywall::{Decision, Reason};

#[derive(Debug, Default)]
pub struct Metrics {
    full: AtomicU64,
    login_required: AtomicU64,
    subscription_required: AtomicU64,
    subscription_expired: AtomicU64,
    meter_exhausted: AtomicU64,
    meter_charges: AtomicU64,
    gift_reads: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub full: u64,
    pub login_required: u64,
    pub subscription_required: u64,
    pub subscription_expired: u64,
    pub meter_exhausted: u64,
    pub meter_charges: u64,
    pub gift_reads: u64,
}

impl Metrics {
    pub fn decision(&self, decision: Decision) {
        let counter = match decision {
            Decision::Full => &self.full,
            Decision::Teaser(Reason::LoginRequired) => &self.login_required,
            Decision::Teaser(Reason::SubscriptionRequired) => &self.subscription_required,
            Decision::Teaser(Reason::SubscriptionExpired) => &self.subscription_expired,
            Decision::Teaser(Reason::MeterExhausted) => &self.meter_exhausted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn meter_charge(&self) {
        self.meter_charges.fetch_add(1, Ordering::Relaxed);
    }

    pub fn gift_read(&self) {
        self.gift_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            full: get(&self.full),
            login_required: get(&self.login_required),
            subscription_required: get(&self.subscription_required),
            subscription_expired: get(&self.subscription_expired),
            meter_exhausted: get(&self.meter_exhausted),
            meter_charges: get(&self.meter_charges),
            gift_reads: get(&self.gift_reads),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_counted_by_reason() {
        let m = Metrics::default();
        m.decision(Decision::Full);
        m.decision(Decision::Teaser(Reason::MeterExhausted));
        m.decision(Decision::Teaser(Reason::MeterExhausted));
        m.meter_charge();
        let s = m.snapshot();
        assert_eq!(
            (s.full, s.meter_exhausted, s.meter_charges, s.login_required),
            (1, 2, 1, 0)
        );
    }
}
