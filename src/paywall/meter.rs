//! Meter periods: calendar months in UTC.

use time::{Date, Month, OffsetDateTime, Time};

/// The first instant of the month after `now`'s, in UTC: when the meter resets.
pub fn period_resets_at(now: OffsetDateTime) -> OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    let (year, month) = match now.month() {
        Month::December => (now.year() + 1, Month::January),
        month => (now.year(), month.next()),
    };
    // The first of a month always exists.
    Date::from_calendar_date(year, month, 1)
        .map(|date| date.with_time(Time::MIDNIGHT).assume_utc())
        .unwrap_or(now)
}

/// The first instant of `now`'s month in UTC: the start of the current period.
pub fn period_starts_at(now: OffsetDateTime) -> OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    now.replace_day(1)
        .map(|d| d.replace_time(Time::MIDNIGHT))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn periods_are_calendar_months_in_utc() {
        assert_eq!(
            period_resets_at(datetime!(2026-11-29 23:59:59 UTC)),
            datetime!(2026-12-01 00:00:00 UTC)
        );
        assert_eq!(
            period_resets_at(datetime!(2026-12-31 23:59:59.999 UTC)),
            datetime!(2027-01-01 00:00:00 UTC)
        );
        assert_eq!(
            period_resets_at(datetime!(2028-02-29 12:00 UTC)),
            datetime!(2028-03-01 00:00:00 UTC)
        );
        // 00:30 on 1 December in Paris is still November in UTC.
        assert_eq!(
            period_resets_at(datetime!(2026-12-01 00:30 +01:00)),
            datetime!(2026-12-01 00:00:00 UTC)
        );
        assert_eq!(
            period_starts_at(datetime!(2026-11-29 23:59:59 UTC)),
            datetime!(2026-11-01 00:00:00 UTC)
        );
    }
}

/// The first instant of the day after `now`'s, in UTC: when a per-day cap resets.
pub fn day_resets_at(now: OffsetDateTime) -> OffsetDateTime {
    let start = day_starts_at(now);
    start + time::Duration::days(1)
}

pub fn day_starts_at(now: OffsetDateTime) -> OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    now.replace_time(Time::MIDNIGHT)
}

/// Who a metered read is counted against, and over which period.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MeterKey {
    /// An anonymous reader's signed meter id: a month.
    Anonymous(String),
    /// A reader account: a month.
    Account(String),
    /// Readers without a valid meter id, by client address: a day.
    Unidentified(String),
}

/// A meter to consult: its key, its period and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub key: String,
    pub period_start: i64,
    pub period_end: i64,
    pub limit: u32,
}

impl Meter {
    pub fn new(key: &MeterKey, limit: u32, now: OffsetDateTime) -> Meter {
        let (name, start, end) = match key {
            MeterKey::Anonymous(id) => (
                format!("m:{id}"),
                period_starts_at(now),
                period_resets_at(now),
            ),
            MeterKey::Account(id) => (
                format!("a:{id}"),
                period_starts_at(now),
                period_resets_at(now),
            ),
            MeterKey::Unidentified(address) => (
                format!("ip:{address}"),
                day_starts_at(now),
                day_resets_at(now),
            ),
        };
        Meter {
            key: name,
            period_start: start.unix_timestamp(),
            period_end: end.unix_timestamp(),
            limit,
        }
    }
}

/// Meter ids are 128 random bits with a 128-bit HMAC-SHA256 tag, both base64url:
/// the server keeps the count, the reader only holds a name it cannot forge.
pub struct MeterIds {
    /// The key that signs new ids, then keys that still verify (earlier secrets), each
    /// as an HMAC state already keyed, so a tag costs only the id's own blocks.
    keys: Vec<hmac::Hmac<sha2::Sha256>>,
}

const ID_BYTES: usize = 16;
const TAG_BYTES: usize = 16;

fn derive(secret: &[u8], purpose: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC is defined for keys of any length: this never fails, whatever the secret.
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC accepts keys of any length");
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

/// A key for one purpose (meter ids, gift tokens), derived from a service secret.
pub fn derive_key(secret: &[u8], purpose: &str) -> [u8; 32] {
    derive(secret, purpose.as_bytes())
}

pub fn tag(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    derive(key, message)
}

impl MeterIds {
    pub fn new(secrets: &[&[u8]]) -> MeterIds {
        use hmac::Mac;
        MeterIds {
            keys: secrets
                .iter()
                .map(|s| {
                    let key = derive_key(s, "paywall meter id v1");
                    <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key)
                        .expect("HMAC accepts keys of any length")
                })
                .collect(),
        }
    }

    /// HMAC-SHA256 of `id` under one of the keys: the same as `tag(key, id)`.
    fn sign(key: &hmac::Hmac<sha2::Sha256>, id: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = key.clone();
        mac.update(id);
        mac.finalize().into_bytes().into()
    }

    /// A new signed id.
    pub fn issue(&self) -> String {
        self.issue_named().0
    }

    /// A new signed id, and the name it counts under (what `verify` would return).
    pub fn issue_named(&self) -> (String, String) {
        use base64::Engine;
        let mut id = [0u8; ID_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let tag = self
            .keys
            .first()
            .map(|key| Self::sign(key, &id))
            .unwrap_or([0; 32]);
        let name = b64.encode(id);
        (format!("{name}.{}", b64.encode(&tag[..TAG_BYTES])), name)
    }

    /// The id inside a presented value, if one of our keys signed it.
    pub fn verify(&self, presented: &str) -> Option<String> {
        use base64::Engine;
        if presented.len() > 64 {
            return None;
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (id_text, tag_text) = presented.split_once('.')?;
        let id = b64.decode(id_text).ok()?;
        let given = b64.decode(tag_text).ok()?;
        if id.len() != ID_BYTES || given.len() != TAG_BYTES {
            return None;
        }
        self.keys
            .iter()
            .any(|key| constant_time_eq(&Self::sign(key, &id)[..TAG_BYTES], &given))
            .then(|| id_text.to_string())
    }
}

/// Compares two byte strings in time that depends only on their length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod id_tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn ids_verify_and_tampering_is_caught() {
        let ids = MeterIds::new(&[SECRET]);
        let id = ids.issue();
        let name = ids.verify(&id).unwrap();
        assert!(id.starts_with(&name));
        let (value, named) = ids.issue_named();
        assert_eq!(ids.verify(&value), Some(named));
        assert_ne!(ids.issue(), id, "random");
        let mut tampered = id.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert!(ids
            .verify(std::str::from_utf8(&tampered).unwrap())
            .is_none());
        let other = MeterIds::new(&[b"another secret of thirty-two bytes!!"]);
        assert!(other.verify(&id).is_none());
        for junk in ["", ".", "abc", "a.b", &"x".repeat(100)] {
            assert!(ids.verify(junk).is_none());
        }
    }

    #[test]
    fn a_keyed_state_signs_as_the_key_does() {
        let ids = MeterIds::new(&[SECRET]);
        let key = derive_key(SECRET, "paywall meter id v1");
        for id in [&b""[..], b"0123456789abcdef", &[7u8; 100]] {
            assert_eq!(MeterIds::sign(&ids.keys[0], id), tag(&key, id));
        }
    }

    #[test]
    fn ids_signed_with_an_earlier_secret_still_count() {
        let old = MeterIds::new(&[SECRET]);
        let id = old.issue();
        let rotated = MeterIds::new(&[b"the new secret, thirty-two bytes long", SECRET]);
        assert!(rotated.verify(&id).is_some());
    }

    #[test]
    fn meters_name_their_key_and_period() {
        let now = datetime!(2026-11-30 23:59:59 UTC);
        let m = Meter::new(&MeterKey::Anonymous("abc".into()), 3, now);
        assert_eq!(m.key, "m:abc");
        assert_eq!(
            m.period_start,
            datetime!(2026-11-01 0:00 UTC).unix_timestamp()
        );
        assert_eq!(
            m.period_end,
            datetime!(2026-12-01 0:00 UTC).unix_timestamp()
        );
        let ip = Meter::new(&MeterKey::Unidentified("192.0.2.1".into()), 10, now);
        assert_eq!(ip.key, "ip:192.0.2.1");
        assert_eq!(
            ip.period_start,
            datetime!(2026-11-30 0:00 UTC).unix_timestamp()
        );
        assert_eq!(
            ip.period_end,
            datetime!(2026-12-01 0:00 UTC).unix_timestamp()
        );
        assert_eq!(
            Meter::new(&MeterKey::Account("x".into()), 5, now).key,
            "a:x"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_values_never_verify(value in "\\PC{0,80}") {
            let ids = MeterIds::new(&[SECRET]);
            prop_assert!(ids.verify(&value).is_none());
        }
    }
}
