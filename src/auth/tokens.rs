//! Access tokens (JWT, HS256) and refresh tokens (opaque, stored as SHA-256 digests).

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// Keys and rules for access tokens, built once at start-up. One secret signs; it and
/// the previous secrets (kept during a rotation) verify. A token's `kid` only selects
/// among these configured keys.
#[derive(Clone)]
pub struct TokenKeys {
    signing_kid: String,
    encoding: EncodingKey,
    verifying: Vec<(String, DecodingKey)>,
    validation: Validation,
    issuer: String,
    audience: String,
    pub access_ttl_secs: i64,
    /// Tokens already verified, shared by every clone of these keys.
    verified: std::sync::Arc<VerifiedTokens>,
}

/// Access tokens that passed every check, with their claims. A reader sends the same
/// token with every request until it expires; looking it up (the whole token, byte for
/// byte) skips the base64, the two JSON parses and the HMAC of a full verification,
/// which were the larger part of a signed-in read. What a verification depends on
/// besides the token is fixed for the process's life (keys, issuer, audience) except
/// the clock, so expiry is checked again on every lookup, with the same leeway.
/// Revocation does not live here: the session behind a token is checked on every
/// request after this.
pub struct VerifiedTokens {
    entries: std::sync::Mutex<std::collections::HashMap<Box<str>, Claims>>,
}

/// Verified tokens kept at most (each a few hundred bytes); when full, it starts over.
const VERIFIED_TOKENS: usize = 4_096;

impl VerifiedTokens {
    fn new() -> Self {
        VerifiedTokens {
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The claims of `token` if it was verified and has not expired at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let claims = entries.get(token)?;
        if claims.exp < now - LEEWAY_SECS as i64 {
            entries.remove(token);
            return None;
        }
        Some(claims.clone())
    }

    fn insert(&self, token: &str, claims: &Claims) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= VERIFIED_TOKENS {
            entries.clear();
        }
        entries.insert(token.into(), claims.clone());
    }
}

/// The `kid` of a secret: 96 bits of a SHA-256 of it, which tells keys apart without
/// revealing anything about them.
pub fn key_id(secret: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"paywall-jwt-kid:");
    hasher.update(secret);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hasher.finalize()[..12])
}

/// Longer tokens are refused before any parsing. Ours are about 400 bytes.
pub const MAX_TOKEN_LEN: usize = 4_096;

const ALGORITHM: Algorithm = Algorithm::HS256;
/// Clock skew tolerated between instances, in seconds.
const LEEWAY_SECS: u64 = 5;

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, access_ttl_secs: i64) -> Self {
        Self::with_previous(secret, &[], issuer, audience, access_ttl_secs)
    }

    /// `previous` secrets still verify tokens they signed, until they are removed.
    pub fn with_previous(
        secret: &[u8],
        previous: &[&[u8]],
        issuer: &str,
        audience: &str,
        access_ttl_secs: i64,
    ) -> Self {
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let verifying = std::iter::once(secret)
            .chain(previous.iter().copied())
            .map(|key| (key_id(key), DecodingKey::from_secret(key)))
            .collect();
        TokenKeys {
            signing_kid: key_id(secret),
            encoding: EncodingKey::from_secret(secret),
            verifying,
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            access_ttl_secs,
            verified: std::sync::Arc::new(VerifiedTokens::new()),
        }
    }

    pub fn issue(
        &self,
        account_id: &str,
        session_id: &str,
        role: Role,
        now: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: account_id.to_string(),
            sid: session_id.to_string(),
            role,
            iat: now,
            exp: now + self.access_ttl_secs,
        };
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    /// Verifies signature, algorithm, issuer, audience and expiry. The error is a
    /// sentence for the `detail` of a 401 that says what is wrong without echoing input.
    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        if token.len() > MAX_TOKEN_LEN {
            return Err("the access token is too long");
        }
        let now = jsonwebtoken::get_current_timestamp() as i64;
        if let Some(claims) = self.verified.get(token, now) {
            return Ok(claims);
        }
        let claims = self.verify_fully(token)?;
        self.verified.insert(token, &claims);
        Ok(claims)
    }

    /// The tokens these keys have verified.
    pub fn verified(&self) -> &VerifiedTokens {
        &self.verified
    }

    fn verify_fully(&self, token: &str) -> Result<Claims, &'static str> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "the access token is malformed")?;
        if header.alg != ALGORITHM {
            return Err("the access token is not signed with the expected algorithm");
        }
        let kid = header.kid.ok_or("the access token does not name its key")?;
        let key = self
            .verifying
            .iter()
            .find(|(id, _)| *id == kid)
            .map(|(_, key)| key)
            .ok_or("the access token is signed with a key this service does not use")?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => "the access token has expired",
                ErrorKind::ImmatureSignature => "the access token is not valid yet",
                ErrorKind::InvalidSignature => "the access token's signature is not valid",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "the access token is not signed with the expected algorithm"
                }
                ErrorKind::InvalidIssuer => "the access token was not issued by this service",
                ErrorKind::InvalidAudience => "the access token is not meant for this service",
                ErrorKind::MissingRequiredClaim(_) => "the access token lacks a required claim",
                _ => "the access token is malformed",
            })
    }
}

/// A new opaque token (refresh or password reset: 256 random bits, URL-safe) and the
/// digest to store for it.
pub fn new_opaque_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let digest = opaque_token_digest(&token);
    (token, digest)
}

pub fn opaque_token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// A random secret for signing when none is configured: 48 bytes, URL-safe text.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, "paywall", "paywall", 900)
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn issued_tokens_verify() {
        let token = keys().issue("acc", "sid", Role::Editor, now()).unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("acc", "sid"));
        assert_eq!(claims.role, Role::Editor);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn expiry_has_only_a_few_seconds_of_leeway() {
        let token = keys()
            .issue("acc", "sid", Role::Reader, now() - 900 - 10)
            .unwrap();
        assert_eq!(keys().verify(&token), Err("the access token has expired"));
    }

    #[test]
    fn other_keys_issuers_and_audiences_are_refused() {
        let token = keys().issue("acc", "sid", Role::Reader, now()).unwrap();
        let other_key = TokenKeys::new(
            b"another secret that is long enough!!",
            "paywall",
            "paywall",
            900,
        );
        assert!(other_key.verify(&token).is_err());
        let other_issuer = TokenKeys::new(SECRET, "someone-else", "paywall", 900);
        assert!(other_issuer.verify(&token).is_err());
        let other_audience = TokenKeys::new(SECRET, "paywall", "another-app", 900);
        assert!(other_audience.verify(&token).is_err());
    }

    // ASVS 5.0 V9.1.3: keys come only from configuration; `kid` merely picks one.
    #[test]
    fn previous_secrets_verify_until_removed() {
        let old = b"the-previous-secret-0123456789abcdef";
        let before = TokenKeys::new(old, "paywall", "paywall", 900);
        let token = before.issue("acc", "sid", Role::Reader, now()).unwrap();
        let rotated = TokenKeys::with_previous(SECRET, &[old], "paywall", "paywall", 900);
        assert!(rotated.verify(&token).is_ok());
        let fresh = rotated.issue("acc", "sid", Role::Reader, now()).unwrap();
        assert!(rotated.verify(&fresh).is_ok());
        assert!(
            before.verify(&fresh).is_err(),
            "the old key never verifies new tokens"
        );
        let after = TokenKeys::new(SECRET, "paywall", "paywall", 900);
        assert_eq!(
            after.verify(&token),
            Err("the access token is signed with a key this service does not use")
        );
    }

    #[test]
    fn a_verified_token_is_served_from_memory_until_it_expires() {
        let keys = keys();
        let token = keys.issue("acc", "sid", Role::Reader, now()).unwrap();
        assert!(
            keys.verified().get(&token, now()).is_none(),
            "not before it is verified"
        );
        let claims = keys.verify(&token).unwrap();
        assert_eq!(
            keys.clone().verified().get(&token, now()),
            Some(claims.clone()),
            "shared by clones"
        );
        assert_eq!(keys.verify(&token), Ok(claims.clone()));
        // Past the expiry and its leeway, the entry is gone, and a full verification
        // would say why.
        let later = claims.exp + LEEWAY_SECS as i64 + 1;
        assert!(keys
            .verified()
            .get(&token, claims.exp + LEEWAY_SECS as i64)
            .is_some());
        assert!(keys.verified().get(&token, later).is_none());
        assert!(keys.verified().get(&token, now()).is_none(), "removed");
    }

    #[test]
    fn a_token_that_differs_in_any_byte_from_a_verified_one_is_verified_afresh() {
        let keys = keys();
        let token = keys.issue("acc", "sid", Role::Reader, now()).unwrap();
        keys.verify(&token).unwrap();
        for at in [0, token.len() / 2, token.len() - 1] {
            let mut forged = token.clone().into_bytes();
            forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            assert!(keys.verify(&forged).is_err(), "byte {at}");
        }
        assert!(keys.verify(&format!("{token}A")).is_err());
        assert!(keys.verify(&token[..token.len() - 1]).is_err());
        // Refused tokens are not kept.
        assert!(keys
            .verified()
            .get(&token[..token.len() - 1], now())
            .is_none());
    }

    #[test]
    fn key_ids_differ_per_secret_and_hide_it() {
        assert_ne!(
            key_id(SECRET),
            key_id(b"another secret entirely, 32 bytes+")
        );
        assert_eq!(key_id(SECRET), key_id(SECRET));
        assert_eq!(key_id(SECRET).len(), 16);
    }

    proptest::proptest! {
        // Fuzzing the token path: arbitrary text never panics and never verifies.
        #[test]
        fn arbitrary_tokens_never_verify(token in "\\PC{0,600}") {
            proptest::prop_assert!(keys().verify(&token).is_err());
        }

        #[test]
        fn mangled_real_tokens_never_verify(cut in 0usize..400, byte in 0u8..128) {
            let real = keys().issue("acc", "sid", Role::Admin, now()).unwrap();
            let mut bytes = real.clone().into_bytes();
            let at = cut % bytes.len();
            if bytes[at] == byte {
                return Ok(());
            }
            bytes[at] = byte;
            if let Ok(mangled) = String::from_utf8(bytes) {
                // A change in the signature's last character can leave its decoded bytes
                // equal (base64 padding bits); anything else must fail.
                let verified = keys().verify(&mangled);
                if verified.is_ok() {
                    proptest::prop_assert!(at >= real.len() - 1, "mangled at {} still verified", at);
                }
            }
        }
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_as_digests() {
        let (a, digest_a) = new_opaque_token();
        let (b, _) = new_opaque_token();
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert_ne!(a, digest_a);
        assert_eq!(opaque_token_digest(&a), digest_a);
    }
}
