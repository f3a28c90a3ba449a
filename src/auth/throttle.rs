//! Throttles: sign-in failures per email and client address and per client address
//! (counted in a fixed window, checked before the password is), and registrations and
//! reset requests per client address (governor's GCRA limiter).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Settings;

/// Failures counted per key in a window that starts at the key's first failure.
struct FailureWindow<K> {
    max: u32,
    window: Duration,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

/// How long until a blocked key may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header, at least one.
    pub fn secs(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

/// Above this many keys, expired windows are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

impl<K: Hash + Eq + Clone> FailureWindow<K> {
    fn new(max: u32, window: Duration) -> Self {
        FailureWindow {
            max,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, u32)>> {
        // A poisoned lock only means another thread panicked mid-update of a counter.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocked now? Does not count anything.
    fn blocked(&self, key: &K, now: Instant) -> Option<RetryAfter> {
        let counts = self.lock();
        let &(start, count) = counts.get(key)?;
        let end = start + self.window;
        (count >= self.max && now < end).then(|| RetryAfter(end - now))
    }

    /// Counts a failure; returns true when this one reached the limit (a new burst).
    fn fail(&self, key: &K, now: Instant) -> bool {
        let mut counts = self.lock();
        if counts.len() > SWEEP_ABOVE {
            let window = self.window;
            counts.retain(|_, (start, _)| now < *start + window);
        }
        let entry = counts.entry(key.clone()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 == self.max
    }

    /// Counts an attempt before it is made, unless the key is blocked: attempts in
    /// flight count too, so a flood sent at once gets no more than the limit through.
    fn attempt(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        let mut counts = self.lock();
        if counts.len() > SWEEP_ABOVE {
            let window = self.window;
            counts.retain(|_, (start, _)| now < *start + window);
        }
        let entry = counts.entry(key.clone()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        let end = entry.0 + self.window;
        if entry.1 >= self.max {
            return Err(RetryAfter(end - now));
        }
        entry.1 += 1;
        Ok(())
    }

    fn forget(&self, key: &K) {
        self.lock().remove(key);
    }
}

pub struct Throttle {
    per_email_and_address: FailureWindow<(String, IpAddr)>,
    per_address: FailureWindow<IpAddr>,
    signups: DefaultKeyedRateLimiter<IpAddr>,
    reset_mails: DefaultKeyedRateLimiter<String>,
    /// Checks of a signed-in account's current password, per account id.
    password_checks: FailureWindow<String>,
}

/// What a throttled sign-in failure was: the first of a burst is worth an audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Burst {
    None,
    PerEmailAndAddress,
    PerAddress,
}

/// Reset mails per address per hour: enough for a reader who lost the first mail.
const RESET_MAILS_PER_HOUR: u32 = 3;

fn hourly(per_hour: u32) -> Quota {
    let n = NonZeroU32::new(per_hour.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_hour(n).allow_burst(n)
}

impl Throttle {
    pub fn new(settings: &Settings) -> Self {
        let window = Duration::from_secs(settings.login_window_secs);
        Throttle {
            per_email_and_address: FailureWindow::new(settings.login_max_failures, window),
            per_address: FailureWindow::new(settings.login_max_failures_per_address, window),
            signups: RateLimiter::keyed(hourly(settings.signups_per_address_per_hour)),
            reset_mails: RateLimiter::keyed(hourly(RESET_MAILS_PER_HOUR)),
            password_checks: FailureWindow::new(settings.login_max_failures, window),
        }
    }

    /// Before a signed-in account's current password is checked (password change,
    /// erasure): the same allowance as sign-in failures per email and address, per
    /// account, so a stolen session cannot be used to guess the password. The attempt
    /// counts until `password_check_passed` clears it.
    pub fn password_check(&self, account_id: &str) -> Result<(), RetryAfter> {
        self.password_checks
            .attempt(&account_id.to_string(), Instant::now())
    }

    pub fn password_check_passed(&self, account_id: &str) {
        self.password_checks.forget(&account_id.to_string());
    }

    /// Checked before a password is verified, so a blocked key learns nothing.
    pub fn login_blocked(&self, email: &str, address: IpAddr) -> Option<RetryAfter> {
        let now = Instant::now();
        let pair = (email.to_string(), address);
        match (
            self.per_email_and_address.blocked(&pair, now),
            self.per_address.blocked(&address, now),
        ) {
            (Some(a), Some(b)) => Some(a.max_of(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn login_failed(&self, email: &str, address: IpAddr) -> Burst {
        let now = Instant::now();
        let pair_burst = self
            .per_email_and_address
            .fail(&(email.to_string(), address), now);
        let address_burst = self.per_address.fail(&address, now);
        match (pair_burst, address_burst) {
            (true, _) => Burst::PerEmailAndAddress,
            (_, true) => Burst::PerAddress,
            _ => Burst::None,
        }
    }

    /// A success clears the failures of that email from that address only, so an
    /// attacker elsewhere cannot lock the owner out and the owner cannot unlock an attacker.
    pub fn login_succeeded(&self, email: &str, address: IpAddr) {
        self.per_email_and_address
            .forget(&(email.to_string(), address));
    }

    /// Registrations and reset requests share one allowance per client address.
    pub fn signup_or_reset(&self, address: IpAddr) -> Result<(), RetryAfter> {
        self.signups.check_key(&address).map_err(|not_until| {
            RetryAfter(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Whether another reset mail may go to this address now (silently skipped if not).
    pub fn reset_mail_allowed(&self, email: &str) -> bool {
        self.reset_mails.check_key(&email.to_string()).is_ok()
    }
}

impl RetryAfter {
    fn max_of(self, other: RetryAfter) -> RetryAfter {
        RetryAfter(self.0.max(other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_after_the_limit_until_the_window_ends() {
        let window = FailureWindow::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(!window.fail(&"k", t0));
        assert!(!window.fail(&"k", t0));
        assert!(window.blocked(&"k", t0).is_none());
        assert!(window.fail(&"k", t0), "the third failure starts a burst");
        assert!(!window.fail(&"k", t0), "later failures are the same burst");
        let wait = window.blocked(&"k", t0 + Duration::from_secs(20)).unwrap();
        assert_eq!(wait.secs(), 40);
        assert!(window.blocked(&"k", t0 + Duration::from_secs(60)).is_none());
        assert!(window.blocked(&"other", t0).is_none());
        // A new window starts fresh.
        assert!(!window.fail(&"k", t0 + Duration::from_secs(61)));
        assert!(window.blocked(&"k", t0 + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn attempts_count_before_they_are_made() {
        let window = FailureWindow::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(window.attempt(&"k", t0).is_ok());
        assert!(window.attempt(&"k", t0).is_ok());
        let wait = window
            .attempt(&"k", t0 + Duration::from_secs(15))
            .unwrap_err();
        assert_eq!(wait.secs(), 45);
        assert!(window.attempt(&"other", t0).is_ok());
        assert!(window.attempt(&"k", t0 + Duration::from_secs(60)).is_ok());
        window.forget(&"k");
        assert!(window.attempt(&"k", t0).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_secs(3)).secs(), 3);
        assert_eq!(RetryAfter(Duration::from_millis(3_001)).secs(), 4);
    }
}
