//! Gift tokens: an article id, an expiry and a random gift id, signed. Checking one
//! needs no database read, and a token opens only its own article.

use base64::Engine;

use super::meter::{constant_time_eq, derive_key, tag};

const TAG_BYTES: usize = 16;
const PAYLOAD_BYTES: usize = 16 + 8 + 16;

pub struct GiftKeys {
    /// The key that signs, then keys that still verify (earlier secrets).
    keys: Vec<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gift {
    pub token: String,
    pub gift_id: String,
    pub expires_at: i64,
}

impl GiftKeys {
    pub fn new(secrets: &[&[u8]]) -> GiftKeys {
        GiftKeys {
            keys: secrets
                .iter()
                .map(|s| derive_key(s, "paywall gift token v1"))
                .collect(),
        }
    }

    /// A token for `article_id` (a UUID) that lasts until `expires_at`.
    pub fn issue(&self, article_id: &str, expires_at: i64) -> Option<Gift> {
        let article = uuid::Uuid::parse_str(article_id).ok()?;
        let gift_id = uuid::Uuid::new_v4();
        let mut payload = Vec::with_capacity(PAYLOAD_BYTES);
        payload.extend_from_slice(article.as_bytes());
        payload.extend_from_slice(&expires_at.to_be_bytes());
        payload.extend_from_slice(gift_id.as_bytes());
        let signature = tag(self.keys.first()?, &payload);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Some(Gift {
            token: format!(
                "{}.{}",
                b64.encode(&payload),
                b64.encode(&signature[..TAG_BYTES])
            ),
            gift_id: gift_id.to_string(),
            expires_at,
        })
    }

    /// Whether `token` is a genuine, unexpired gift of `article_id`. Anything else —
    /// tampered, expired, for another article, garbage — is simply not a gift.
    pub fn opens(&self, token: &str, article_id: &str, now: i64) -> bool {
        if token.len() > 128 {
            return false;
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let Some((payload_text, tag_text)) = token.split_once('.') else {
            return false;
        };
        let (Ok(payload), Ok(given)) = (b64.decode(payload_text), b64.decode(tag_text)) else {
            return false;
        };
        if payload.len() != PAYLOAD_BYTES || given.len() != TAG_BYTES {
            return false;
        }
        let genuine = self
            .keys
            .iter()
            .any(|key| constant_time_eq(&tag(key, &payload)[..TAG_BYTES], &given));
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&payload[16..24]);
        let for_this_article =
            uuid::Uuid::parse_str(article_id).is_ok_and(|id| id.as_bytes()[..] == payload[..16]);
        genuine && for_this_article && i64::from_be_bytes(expiry) > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn article() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    #[test]
    fn a_gift_opens_its_article_until_it_expires() {
        let keys = GiftKeys::new(&[SECRET]);
        let a = article();
        let gift = keys.issue(&a, 1_000).unwrap();
        assert!(keys.opens(&gift.token, &a, 999));
        assert!(!keys.opens(&gift.token, &a, 1_000), "expired at its expiry");
        assert!(!keys.opens(&gift.token, &article(), 999), "another article");
        assert_ne!(
            keys.issue(&a, 1_000).unwrap().token,
            gift.token,
            "unguessable: random each time"
        );
    }

    #[test]
    fn tampered_and_foreign_tokens_open_nothing() {
        let keys = GiftKeys::new(&[SECRET]);
        let a = article();
        let gift = keys.issue(&a, 10_000).unwrap();
        let other = GiftKeys::new(&[b"another secret of thirty-two bytes!!"]);
        assert!(!other.opens(&gift.token, &a, 0));
        // Move the expiry forward without the key: the signature no longer matches.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, sig) = gift.token.split_once('.').unwrap();
        let mut bytes = b64.decode(payload).unwrap();
        bytes[16..24].copy_from_slice(&i64::MAX.to_be_bytes());
        let forged = format!("{}.{sig}", b64.encode(bytes));
        assert!(!keys.opens(&forged, &a, 20_000));
        assert!(!keys.opens("", &a, 0));
        assert!(!keys.opens("x.y", &a, 0));
        let rotated = GiftKeys::new(&[b"the new secret, thirty-two bytes long", SECRET]);
        assert!(
            rotated.opens(&gift.token, &a, 0),
            "earlier secrets still verify"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_open_nothing(token in "\\PC{0,140}") {
            let keys = GiftKeys::new(&[SECRET]);
            prop_assert!(!keys.opens(&token, &article(), 0));
        }
    }
}
