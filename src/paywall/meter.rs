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
    /// What a read counts as on this meter: None, the article (re-reading a counted
    /// article is free); Some, this entry of its own, so every read counts.
    pub entry: Option<String>,
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
            entry: None,
        }
    }

    /// The same meter, counting this read as `entry` (unique to the read) instead of
    /// the article: a re-read costs as much as a first read.
    pub fn counting_every_read(self, entry: String) -> Meter {
        Meter {
            entry: Some(entry),
            ..self
        }
    }

    /// What `article_id`'s read is counted as on this meter.
    pub fn entry_for<'a>(&'a self, article_id: &'a str) -> &'a str {
        self.entry.as_deref().unwrap_or(article_id)
    }
}

/// Meter ids are 128 bits with a 128-bit HMAC-SHA256 tag, both base64url: the server
/// keeps the count, the reader only holds a name it cannot forge. A new id's text
/// begins with the time it was issued and a count (see `ordered_prefix`), so that ids
/// sort in the order they were issued, and ends with 68 random bits: the meter's rows
/// are kept in the order of their ids, and a new reader's charges then go where the
/// other new readers' went, in a few pages of the database, instead of one page each
/// (bench/RESULTS.md). Any 128 bits with a valid tag verify, ids issued before this
/// order included.
pub struct MeterIds {
    /// The key that signs new ids, then keys that still verify (earlier secrets), each
    /// as an HMAC state already keyed, so a tag costs only the id's own blocks.
    keys: Vec<hmac::Hmac<sha2::Sha256>>,
    /// The ordered value of the last id issued (see `ordered_prefix`).
    last: std::sync::atomic::AtomicU64,
}

const ID_BYTES: usize = 16;
const TAG_BYTES: usize = 16;
/// An id's text: 22 base64url characters for its 16 bytes.
const ID_CHARS: usize = 22;
/// The letters the ordered part of an id is written in: base 52, digits in the order of
/// their ASCII codes, so that the text sorts as the number does.
const ORDERED_DIGITS: &[u8; 52] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters of the ordered part: 52^10 is above 2^57, room for milliseconds until the
/// year 2248 times `COUNT_BITS`.
const ORDERED_CHARS: usize = 10;
/// Ids one process can issue in one millisecond before it borrows from the next.
const COUNT_BITS: u32 = 14;
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// The last character carries two of the id's bits, and must leave the other four at
/// zero for the text to be the canonical encoding of 16 bytes.
const LAST_CHARS: &[u8; 4] = b"AQgw";

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
            last: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The beginning of a new id's text: `ORDERED_CHARS` digits of a number above every
    /// one issued before by these ids, made of the time in milliseconds and a count
    /// within it (a clock set back goes on from the last number).
    fn ordered_prefix(&self, now_ms: u64) -> [u8; ORDERED_CHARS] {
        use std::sync::atomic::Ordering;
        let floor = now_ms << COUNT_BITS;
        let after = |last: u64| floor.max(last.saturating_add(1));
        // The closure never declines, so the update always takes; `after` of what it
        // replaced is what it stored.
        let previous = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(after(last))
            })
            .unwrap_or_else(|last| last);
        let mut value = after(previous);
        let mut digits = [0u8; ORDERED_CHARS];
        for digit in digits.iter_mut().rev() {
            *digit = ORDERED_DIGITS[(value % 52) as usize];
            value /= 52;
        }
        digits
    }

    /// The text of a new id issued at `now_ms`: the ordered part, then random
    /// characters (11 of 6 bits and a last one of 2).
    fn new_id_text(&self, now_ms: u64) -> [u8; ID_CHARS] {
        let mut text = [0u8; ID_CHARS];
        text[..ORDERED_CHARS].copy_from_slice(&self.ordered_prefix(now_ms));
        let mut random = [0u8; ID_CHARS - ORDERED_CHARS];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        for (c, byte) in text[ORDERED_CHARS..ID_CHARS - 1].iter_mut().zip(random) {
            *c = BASE64URL[usize::from(byte & 63)];
        }
        text[ID_CHARS - 1] = LAST_CHARS[usize::from(random[ID_CHARS - ORDERED_CHARS - 1] & 3)];
        text
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
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> COUNT_BITS)
            });
        let text = self.new_id_text(now_ms);
        // Letters of base64url throughout, 16 bytes' worth, a last character with its
        // spare bits at zero: always decodes. Were it ever not to, a random id serves.
        let id = b64
            .decode(text)
            .ok()
            .filter(|id| id.len() == ID_BYTES)
            .unwrap_or_else(|| {
                let mut id = vec![0u8; ID_BYTES];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
                id
            });
        let tag = self
            .keys
            .first()
            .map(|key| Self::sign(key, &id))
            .unwrap_or([0; 32]);
        let name = b64.encode(&id);
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
    fn ids_sort_in_the_order_they_were_issued() {
        let ids = MeterIds::new(&[SECRET]);
        let issued: Vec<String> = (0..20_000).map(|_| ids.issue_named().1).collect();
        for pair in issued.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        // Within one millisecond, and with the clock set back, each id still sorts after
        // the one before.
        let fixed = MeterIds::new(&[SECRET]);
        let mut previous = fixed.new_id_text(1_790_000_000_000);
        for now in [1_790_000_000_000, 1_790_000_000_000, 1_700_000_000_000, 0] {
            let next = fixed.new_id_text(now);
            assert!(next > previous);
            previous = next;
        }
        // A later millisecond sorts after everything issued in an earlier one.
        let before = fixed.new_id_text(1_790_000_000_000 + 10);
        assert!(fixed.new_id_text(1_790_000_000_000 + 11) > before);
    }

    #[test]
    fn new_ids_are_canonical_16_bytes_with_random_ends() {
        use base64::Engine;
        let ids = MeterIds::new(&[SECRET]);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut ends = std::collections::HashSet::new();
        for _ in 0..1_000 {
            let text = ids.new_id_text(1_790_000_000_000);
            let id = b64.decode(text).unwrap();
            assert_eq!(id.len(), ID_BYTES);
            assert_eq!(b64.encode(&id).as_bytes(), &text[..]);
            ends.insert(text[ORDERED_CHARS..].to_vec());
        }
        assert_eq!(ends.len(), 1_000, "68 random bits each");
        // The issue time is in the text: the first ids of the year 2248 still fit.
        let far = ids.new_id_text((1u64 << (57 - COUNT_BITS)) - 1);
        assert!(b64.decode(far).is_ok());
    }

    #[test]
    fn ids_issued_as_random_bits_still_verify() {
        use base64::Engine;
        // Ids were 16 random bytes before they were ordered; readers still hold some.
        let ids = MeterIds::new(&[SECRET]);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let id = [0xA7u8; ID_BYTES];
        let tag = MeterIds::sign(&ids.keys[0], &id);
        let value = format!("{}.{}", b64.encode(id), b64.encode(&tag[..TAG_BYTES]));
        assert_eq!(ids.verify(&value), Some(b64.encode(id)));
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
