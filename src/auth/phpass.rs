//! WordPress password hashes, verified as they are so that readers moved from
//! WordPress sign in with their passwords (and get an Argon2id hash then):
//! - phpass "portable" hashes (`$P$` and `$H$`), WordPress's format before 6.8: MD5 of
//!   the salt and password, iterated 2^n times, in phpass's own base-64;
//! - WordPress 6.8's `$wp$2y$...`: bcrypt of the base-64 HMAC-SHA384 of the password
//!   under the key `wp-sha384`.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// phpass's base-64 of `input`, least significant bits first.
fn encode64(input: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < input.len() {
        let mut value = u32::from(input[i]);
        i += 1;
        out.push(ITOA64[(value & 0x3f) as usize] as char);
        if i < input.len() {
            value |= u32::from(input[i]) << 8;
        }
        out.push(ITOA64[((value >> 6) & 0x3f) as usize] as char);
        if i >= input.len() {
            break;
        }
        i += 1;
        if i < input.len() {
            value |= u32::from(input[i]) << 16;
        }
        out.push(ITOA64[((value >> 12) & 0x3f) as usize] as char);
        if i >= input.len() {
            break;
        }
        i += 1;
        out.push(ITOA64[((value >> 18) & 0x3f) as usize] as char);
    }
    out
}

/// The iteration count's log2 of a portable hash, if it is one (7 to 30, as phpass).
fn portable_rounds(hash: &str) -> Option<u32> {
    if hash.len() != 34 || !(hash.starts_with("$P$") || hash.starts_with("$H$")) {
        return None;
    }
    let log2 = ITOA64.iter().position(|&c| c == hash.as_bytes()[3])? as u32;
    (7..=30).contains(&log2).then_some(log2)
}

/// Whether `hash` is a WordPress hash this module verifies.
pub fn is_wordpress_hash(hash: &str) -> bool {
    portable_rounds(hash).is_some()
        || hash
            .strip_prefix("$wp")
            .is_some_and(|bcrypted| bcrypted.parse::<bcrypt::HashParts>().is_ok())
}

fn portable_matches(password: &str, stored: &str) -> bool {
    let Some(log2) = portable_rounds(stored) else {
        return false;
    };
    let salt = &stored.as_bytes()[4..12];
    let mut hash = Md5::new()
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    for _ in 0..(1u64 << log2) {
        hash = Md5::new()
            .chain_update(hash)
            .chain_update(password)
            .finalize();
    }
    let made = format!("{}{}", &stored[..12], encode64(&hash));
    // Compared in constant time: the stored hash is a secret too.
    made.len() == stored.len()
        && made
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn wp_bcrypt_matches(password: &str, stored: &str) -> bool {
    use base64::Engine;
    let Some(bcrypted) = stored.strip_prefix("$wp") else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha384>::new_from_slice(b"wp-sha384") else {
        return false;
    };
    mac.update(password.as_bytes());
    let prehashed = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    bcrypt::verify(prehashed, bcrypted).unwrap_or(false)
}

/// Checks a password against a WordPress hash.
pub fn wordpress_matches(password: &str, stored: &str) -> bool {
    if stored.starts_with("$wp") {
        wp_bcrypt_matches(password, stored)
    } else {
        portable_matches(password, stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_hashes_of_phpass_verify() {
        // phpass's own test vector: a portable hash of "test12345".
        let stored = "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0";
        assert!(is_wordpress_hash(stored));
        assert!(wordpress_matches("test12345", stored));
        assert!(!wordpress_matches("test12346", stored));
        // The same password and salt with another count is another hash.
        assert!(!wordpress_matches(
            "test12345",
            "$P$AIQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0"
        ));
    }

    #[test]
    fn wordpress_68_bcrypt_hashes_verify() {
        use base64::Engine;
        let mut mac = Hmac::<sha2::Sha384>::new_from_slice(b"wp-sha384").unwrap();
        mac.update(b"correct horse");
        let prehashed =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let stored = format!("$wp{}", bcrypt::hash(prehashed, 4).unwrap());
        assert!(is_wordpress_hash(&stored));
        assert!(wordpress_matches("correct horse", &stored));
        assert!(!wordpress_matches("correct horsE", &stored));
    }

    #[test]
    fn other_text_is_not_a_wordpress_hash() {
        for text in [
            "",
            "$P$",
            "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L",
            "$X$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0",
            "$wp$nope",
            "plain",
        ] {
            assert!(!is_wordpress_hash(text), "{text:?}");
        }
    }
}
