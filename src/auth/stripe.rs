//! Stripe's webhook signatures, checked exactly as Stripe documents them: the
//! `Stripe-Signature` header holds `t=<unix seconds>` and one or more `v1=<hex>`
//! (other schemes, such as `v0`, are passed over); a signature is valid when some `v1`
//! equals HMAC-SHA256(secret, `t` + "." + the raw body) for some configured secret
//! (several while one is rotated), compared in constant time, and the timestamp is
//! within `TOLERANCE_SECS` of now either way (a replay of an old delivery, or one
//! dated ahead, is refused). The key is the whole `whsec_...` secret, as Stripe's
//! libraries use it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far from now a signed timestamp may be, in seconds (Stripe's default).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a delivery's signature was refused (every one is 400 `invalid_signature`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp (t=)")]
    NoTimestamp,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1,
    #[error("a v1 signature is not 64 hexadecimal digits")]
    BadHex,
    #[error("the signed timestamp is more than 300 seconds old")]
    Stale,
    #[error("the signed timestamp is more than 300 seconds ahead")]
    Future,
    #[error("no v1 signature matches the body with a configured secret")]
    NoMatch,
}

/// Checks `header` (the `Stripe-Signature` value) over the raw `body` with each of
/// `secrets`, at `now` (Unix seconds); gives the signed timestamp.
pub fn verify<S: AsRef<[u8]>>(
    header: Option<&str>,
    body: &[u8],
    secrets: &[S],
    now: i64,
) -> Result<i64, SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            // The signed text is the timestamp as sent, not as re-written.
            "t" => timestamp = value.parse::<i64>().ok().map(|t| (t, value)),
            "v1" => signatures.push(decode_hex(value).ok_or(SignatureError::BadHex)?),
            _ => {}
        }
    }
    let (timestamp, sent) = timestamp.ok_or(SignatureError::NoTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoV1);
    }
    if timestamp < now.saturating_sub(TOLERANCE_SECS) {
        return Err(SignatureError::Stale);
    }
    if timestamp > now.saturating_add(TOLERANCE_SECS) {
        return Err(SignatureError::Future);
    }
    let signed_prefix = format!("{sent}.");
    for secret in secrets {
        for signature in &signatures {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_ref()) else {
                continue;
            };
            mac.update(signed_prefix.as_bytes());
            mac.update(body);
            // `verify_slice` compares in constant time.
            if mac.verify_slice(signature).is_ok() {
                return Ok(timestamp);
            }
        }
    }
    Err(SignatureError::NoMatch)
}

/// A SHA-256 HMAC written as 64 hexadecimal digits (either case).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The header Stripe would send for `body` signed with `secret` at `timestamp` (for
/// tests and for checking a configuration by hand).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"whsec_test_0123456789abcdefghijklmnop";
    const OTHER: &[u8] = b"whsec_rotated_9876543210zyxwvutsrqpon";
    const NOW: i64 = 1_790_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    #[test]
    fn a_delivery_signed_as_stripe_signs_verifies() {
        let header = sign(SECRET, NOW - 10, BODY);
        assert_eq!(verify(Some(&header), BODY, &[SECRET], NOW), Ok(NOW - 10));
        // Uppercase hex, spaces, a v0 and an unknown scheme beside it change nothing.
        let upper = header.replace(
            &header[header.find("v1=").unwrap() + 3..],
            &header[header.find("v1=").unwrap() + 3..].to_uppercase(),
        );
        let noisy = format!(" {upper}, v0=abc, x=1 ");
        assert_eq!(verify(Some(&noisy), BODY, &[SECRET], NOW), Ok(NOW - 10));
    }

    #[test]
    fn every_fault_is_refused() {
        let good = sign(SECRET, NOW, BODY);
        let v1 = &good[good.find("v1=").unwrap()..];
        let cases: Vec<(Option<String>, &[u8], SignatureError)> = vec![
            (None, BODY, SignatureError::Missing),
            (Some("  ".into()), BODY, SignatureError::Missing),
            (Some(v1.to_string()), BODY, SignatureError::NoTimestamp),
            (
                Some(format!("t=soon,{v1}")),
                BODY,
                SignatureError::NoTimestamp,
            ),
            (Some(format!("t={NOW}")), BODY, SignatureError::NoV1),
            (Some(format!("t={NOW},v0=00")), BODY, SignatureError::NoV1),
            (
                Some(format!("t={NOW},v1=xyz")),
                BODY,
                SignatureError::BadHex,
            ),
            (
                Some(format!("t={NOW},v1={}", "g".repeat(64))),
                BODY,
                SignatureError::BadHex,
            ),
            (
                Some(good.clone()),
                b"{\"id\":\"evt_2\"}",
                SignatureError::NoMatch,
            ),
            (Some(sign(OTHER, NOW, BODY)), BODY, SignatureError::NoMatch),
            (
                Some(sign(SECRET, NOW - TOLERANCE_SECS - 1, BODY)),
                BODY,
                SignatureError::Stale,
            ),
            (
                Some(sign(SECRET, NOW + TOLERANCE_SECS + 1, BODY)),
                BODY,
                SignatureError::Future,
            ),
        ];
        for (header, body, expected) in cases {
            assert_eq!(
                verify(header.as_deref(), body, &[SECRET], NOW),
                Err(expected),
                "{header:?}"
            );
        }
        // The timestamp is signed as sent: re-written with a leading zero, no match.
        let padded = good.replacen("t=", "t=0", 1);
        assert_eq!(
            verify(Some(&padded), BODY, &[SECRET], NOW),
            Err(SignatureError::NoMatch)
        );
        // At the edges of the tolerance, still valid.
        for t in [NOW - TOLERANCE_SECS, NOW + TOLERANCE_SECS] {
            assert!(verify(Some(&sign(SECRET, t, BODY)), BODY, &[SECRET], NOW).is_ok());
        }
    }

    #[test]
    fn during_a_rotation_either_secret_and_either_signature_verify() {
        let old = sign(OTHER, NOW, BODY);
        let new = sign(SECRET, NOW, BODY);
        assert!(verify(Some(&old), BODY, &[SECRET, OTHER], NOW).is_ok());
        assert!(verify(Some(&new), BODY, &[SECRET, OTHER], NOW).is_ok());
        // Stripe sends one v1 per secret while an endpoint's secret is rolled.
        let both = format!("{new},{}", &old[old.find("v1=").unwrap()..]);
        assert!(verify(Some(&both), BODY, &[OTHER], NOW).is_ok());
        assert!(verify(Some(&both), BODY, &[SECRET], NOW).is_ok());
        let none: [&[u8]; 0] = [];
        assert_eq!(
            verify(Some(&both), BODY, &none, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    proptest! {
        #[test]
        fn any_body_verifies_and_any_changed_byte_does_not(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            skew in -TOLERANCE_SECS..=TOLERANCE_SECS,
            flip in any::<prop::sample::Index>(),
        ) {
            let header = sign(SECRET, NOW + skew, &body);
            prop_assert_eq!(verify(Some(&header), &body, &[SECRET], NOW), Ok(NOW + skew));
            if !body.is_empty() {
                let mut altered = body.clone();
                let at = flip.index(altered.len());
                altered[at] ^= 0x01;
                prop_assert_eq!(
                    verify(Some(&header), &altered, &[SECRET], NOW),
                    Err(SignatureError::NoMatch)
                );
            }
        }

        #[test]
        fn any_header_is_checked_without_panic(header in ".{0,200}") {
            let _ = verify(Some(&header), BODY, &[SECRET], NOW);
        }
    }
}
