//! API keys: the credential of the publisher's systems (CMS, billing, newsletter).
//!
//! A key is `pwk_` and 43 URL-safe characters (256 random bits), so secret scanners can
//! recognise a leaked one (`pwk_[A-Za-z0-9_-]{43}`). Only a digest is stored: HMAC-SHA256
//! under a key derived from the signing secret. A fast hash is right here, unlike for
//! passwords: with 256 random bits there is nothing to guess, so a slow hash would only
//! cost every request time. Keying it means that someone who can write to the database
//! (a restored backup, an injection elsewhere) still cannot plant a key of their own
//! choosing, and a copy of the table alone confirms nothing about any key.

use base64::Engine;
use rand::RngCore;

use crate::auth::tokens::key_id;
use crate::paywall::meter::{derive_key, tag};

pub const KEY_PREFIX: &str = "pwk_";
/// The characters of a key kept in clear to tell keys apart (`pwk_` and 8 more).
const SHOWN: usize = KEY_PREFIX.len() + 8;
const KEY_LEN: usize = KEY_PREFIX.len() + 43;

/// What a key may do: call the admin routes of these groups.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Accounts: list, create, view, change, delete; their sessions, seats and reset links.
    Accounts,
    /// Subscriptions: grant, replace and end them (and find the account to act on).
    Subscriptions,
    /// Articles: the editor's routes.
    Articles,
    /// The audit log.
    Audit,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Accounts,
        Scope::Subscriptions,
        Scope::Articles,
        Scope::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Accounts => "accounts",
            Scope::Subscriptions => "subscriptions",
            Scope::Articles => "articles",
            Scope::Audit => "audit",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }

    /// Scopes as stored: space-separated, in `ALL`'s order, each once.
    pub fn join(scopes: &[Scope]) -> String {
        let mut sorted = scopes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Stored scopes back; names this version does not know grant nothing.
    pub fn split(text: &str) -> Vec<Scope> {
        text.split_whitespace().filter_map(Scope::parse).collect()
    }
}

/// Whether a bearer token is shaped like an API key (never a JWT: those hold dots).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX)
}

/// A key just made: shown once, then only its digest and prefix are kept.
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub digest: String,
    pub digest_kid: String,
}

/// The digest keys: the current secret's first, then earlier ones (during a rotation a
/// key stored under an earlier secret is still found, and stored again under the new).
#[derive(Clone)]
pub struct ApiKeyDigests {
    keys: Vec<([u8; 32], String)>,
}

impl ApiKeyDigests {
    pub fn new(secrets: &[&[u8]]) -> ApiKeyDigests {
        ApiKeyDigests {
            keys: secrets
                .iter()
                .map(|secret| (derive_key(secret, "paywall api key v1"), key_id(secret)))
                .collect(),
        }
    }

    pub fn generate(&self) -> Option<NewKey> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let key = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let (digest, digest_kid) = self.digests(&key).next()?;
        Some(NewKey {
            prefix: key[..SHOWN].to_string(),
            key,
            digest,
            digest_kid,
        })
    }

    /// The digest of `key` under each secret, current first, with the secret's key id.
    /// Nothing for a token that is not shaped like a key.
    pub fn digests<'a>(&'a self, key: &'a str) -> impl Iterator<Item = (String, String)> + 'a {
        let well_formed = key.len() == KEY_LEN
            && is_api_key(key)
            && key[KEY_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        self.keys
            .iter()
            .filter(move |_| well_formed)
            .map(move |(secret, kid)| {
                (
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(tag(secret, key.as_bytes())),
                    kid.clone(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OLD: &[u8] = b"the-previous-secret-0123456789abcdef";
    const NEW: &[u8] = b"the-current-secret-0123456789abcdef!";

    #[test]
    fn keys_are_recognisable_and_digested_under_each_secret() {
        let digests = ApiKeyDigests::new(&[NEW, OLD]);
        let made = digests.generate().unwrap();
        assert!(made.key.starts_with("pwk_") && made.key.len() == 47);
        assert!(made.key.starts_with(&made.prefix) && made.prefix.len() == 12);
        let all: Vec<_> = digests.digests(&made.key).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], (made.digest.clone(), made.digest_kid.clone()));
        // Under the old secret alone, the old digest comes first: a key stored before a
        // rotation is found by the second digest after it.
        let before = ApiKeyDigests::new(&[OLD]);
        assert_eq!(before.digests(&made.key).next().unwrap(), all[1]);
        assert_ne!(all[0].0, all[1].0);
    }

    #[test]
    fn scopes_are_stored_sorted_and_unique() {
        let text = Scope::join(&[Scope::Audit, Scope::Accounts, Scope::Audit]);
        assert_eq!(text, "accounts audit");
        assert_eq!(Scope::split(&text), vec![Scope::Accounts, Scope::Audit]);
        assert_eq!(Scope::split("accounts billing"), vec![Scope::Accounts]);
    }

    proptest! {
        #[test]
        fn malformed_keys_have_no_digest(token in ".{0,80}") {
            let digests = ApiKeyDigests::new(&[NEW]);
            let shaped = token.len() == 47 && token.starts_with("pwk_")
                && token[4..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            prop_assert_eq!(digests.digests(&token).count(), usize::from(shaped));
        }
    }
}
