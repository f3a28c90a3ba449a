//! Throttles: sign-in failures per email and client address and per client address,
//! and current-password checks per account (counted in fixed windows in the database,
//! so that every instance shares one allowance, and checked before the password is),
//! and registrations and reset requests per client address (governor's GCRA limiter,
//! per instance).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::store::FailureCount;

/// How long until a blocked key may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header, at least one.
    pub fn secs(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

pub struct Throttle {
    max_per_email_and_address: u32,
    max_per_address: u32,
    window_secs: i64,
    signups: DefaultKeyedRateLimiter<IpAddr>,
    reset_mails: DefaultKeyedRateLimiter<String>,
    seat_takes: DefaultKeyedRateLimiter<String>,
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

/// "Continue reading here" per account per minute: far more than a reader moving
/// between devices needs; each take-over drops every instance's session cache, so an
/// account cannot turn it into a flood that makes every reader's session a database
/// read.
const SEAT_TAKES_PER_MINUTE: u32 = 10;

fn hourly(per_hour: u32) -> Quota {
    let n = NonZeroU32::new(per_hour.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_hour(n).allow_burst(n)
}

/// The keys one sign-in's failures count under, in the order `login_blocked` and
/// `login_burst` take their counts: the email with the client address, then the address.
pub fn login_keys(email: &str, address: IpAddr) -> [String; 2] {
    [
        format!("login:{email} {address}"),
        format!("address:{address}"),
    ]
}

/// The key a signed-in account's current-password checks count under.
pub fn password_check_key(account_id: &str) -> String {
    format!("password:{account_id}")
}

/// The allowances (`PAYWALL_LOGIN_*`, `PAYWALL_SIGNUPS_PER_ADDRESS_PER_HOUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    pub login_max_failures: u32,
    pub login_max_failures_per_address: u32,
    pub login_window_secs: u64,
    pub signups_per_address_per_hour: u32,
}

impl Throttle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Throttle {
            max_per_email_and_address: limits.login_max_failures,
            max_per_address: limits.login_max_failures_per_address,
            window_secs: i64::try_from(limits.login_window_secs).unwrap_or(i64::MAX),
            signups: RateLimiter::keyed(hourly(limits.signups_per_address_per_hour)),
            reset_mails: RateLimiter::keyed(hourly(RESET_MAILS_PER_HOUR)),
            seat_takes: RateLimiter::keyed(
                Quota::per_minute(
                    NonZeroU32::new(SEAT_TAKES_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
                )
                .allow_burst(NonZeroU32::new(SEAT_TAKES_PER_MINUTE).unwrap_or(NonZeroU32::MIN)),
            ),
        }
    }

    /// The length of a failure window, in seconds.
    pub fn window_secs(&self) -> i64 {
        self.window_secs
    }

    fn wait(&self, count: &FailureCount, max: u32, now: i64) -> Option<RetryAfter> {
        let end = count.window_start.saturating_add(self.window_secs);
        (count.failures >= max && now < end)
            .then(|| RetryAfter(Duration::from_secs((end - now).unsigned_abs())))
    }

    /// Whether a sign-in is blocked, from the counts of its `login_keys`; checked
    /// before a password is verified, so a blocked key learns nothing.
    pub fn login_blocked(&self, counts: &[Option<FailureCount>], now: i64) -> Option<RetryAfter> {
        let limits = [self.max_per_email_and_address, self.max_per_address];
        counts
            .iter()
            .zip(limits)
            .filter_map(|(count, max)| self.wait(count.as_ref()?, max, now))
            .max_by_key(|retry| retry.0)
    }

    /// Whether the failure just counted reached a limit: the first of a burst.
    pub fn login_burst(&self, counts: &[FailureCount]) -> Burst {
        let reached = |i: usize, max: u32| counts.get(i).is_some_and(|c| c.failures == max);
        if reached(0, self.max_per_email_and_address) {
            Burst::PerEmailAndAddress
        } else if reached(1, self.max_per_address) {
            Burst::PerAddress
        } else {
            Burst::None
        }
    }

    /// After a current-password check was counted (before it is made, so checks in
    /// flight count too): allowed while within the allowance of sign-in failures per
    /// email and address, else how long to wait.
    pub fn password_check(&self, counted: &FailureCount, now: i64) -> Result<(), RetryAfter> {
        if counted.failures <= self.max_per_email_and_address {
            return Ok(());
        }
        Err(self
            .wait(counted, self.max_per_email_and_address, now)
            .unwrap_or(RetryAfter(Duration::from_secs(1))))
    }

    /// Registrations and reset requests share one allowance per client address.
    pub fn signup_or_reset(&self, address: IpAddr) -> Result<(), RetryAfter> {
        self.signups.check_key(&address).map_err(|not_until| {
            RetryAfter(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Whether this account may ask for a reading seat again now.
    pub fn seat_take(&self, account_id: &str) -> Result<(), RetryAfter> {
        self.seat_takes
            .check_key(&account_id.to_string())
            .map_err(|not_until| {
                RetryAfter(not_until.wait_time_from(DefaultClock::default().now()))
            })
    }

    /// Whether another reset mail may go to this address now (silently skipped if not).
    pub fn reset_mail_allowed(&self, email: &str) -> bool {
        self.reset_mails.check_key(&email.to_string()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleLimits {
            login_max_failures: 3,
            login_max_failures_per_address: 10,
            login_window_secs: 60,
            signups_per_address_per_hour: 20,
        })
    }

    fn count(window_start: i64, failures: u32) -> FailureCount {
        FailureCount {
            window_start,
            failures,
        }
    }

    #[test]
    fn sign_ins_are_blocked_at_either_limit_until_its_window_ends() {
        let t = throttle();
        assert_eq!(t.login_blocked(&[None, None], 100), None);
        assert_eq!(t.login_blocked(&[Some(count(100, 2)), None], 100), None);
        let wait = t.login_blocked(&[Some(count(100, 3)), None], 120).unwrap();
        assert_eq!(wait.secs(), 40);
        assert_eq!(t.login_blocked(&[Some(count(100, 3)), None], 160), None);
        let wait = t
            .login_blocked(&[Some(count(100, 3)), Some(count(110, 10))], 120)
            .unwrap();
        assert_eq!(wait.secs(), 50, "the longer wait of the two");
    }

    #[test]
    fn a_burst_is_the_failure_that_reaches_a_limit() {
        let t = throttle();
        assert_eq!(t.login_burst(&[count(0, 2), count(0, 2)]), Burst::None);
        assert_eq!(
            t.login_burst(&[count(0, 3), count(0, 3)]),
            Burst::PerEmailAndAddress
        );
        assert_eq!(t.login_burst(&[count(0, 4), count(0, 4)]), Burst::None);
        assert_eq!(
            t.login_burst(&[count(0, 1), count(0, 10)]),
            Burst::PerAddress
        );
    }

    #[test]
    fn password_checks_within_the_allowance() {
        let t = throttle();
        assert!(t.password_check(&count(100, 3), 100).is_ok());
        assert_eq!(
            t.password_check(&count(100, 4), 130).unwrap_err().secs(),
            30
        );
    }

    #[test]
    fn keys_name_what_they_count() {
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            login_keys("ada@example.org", address),
            [
                "login:ada@example.org 192.0.2.7".to_string(),
                "address:192.0.2.7".to_string()
            ]
        );
        assert_eq!(password_check_key("abc"), "password:abc");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_secs(3)).secs(), 3);
        assert_eq!(RetryAfter(Duration::from_millis(3_001)).secs(), 4);
    }
}
