/// A new password as typed: 8 to 128 Unicode characters, never trimmed or case-folded,
/// and not among the most guessable passwords.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// zxcvbn scores 0 (under 10^3 guesses) and 1 (under 10^6): the passwords found in
/// breach lists and the common words and patterns around them.
const MIN_SCORE: u8 = 2;

impl Password {
    pub fn parse_length(raw: &str) -> Result<(), String> {
        let chars = raw.chars().count();
        if chars < 8 {
            return Err("must be at least 8 characters".into());
        }
        if chars > 128 {
            return Err("must be at most 128 characters".into());
        }
        Ok(())
    }

    /// Checks a password someone is choosing. `context` holds words the guesser knows
    /// (the email, the display name), which make a password weaker when it uses them.
    pub fn parse_new(raw: &str, context: &[&str]) -> Result<Self, String> {
        Self::parse_length(raw)?;
        let score = zxcvbn::zxcvbn(raw, context).score();
        if (score as u8) < MIN_SCORE {
            return Err(
                "is too common or too easy to guess; choose a longer or less usual one".into(),
            );
        }
        Ok(Password(raw.to_string()))
    }

    /// A password given to sign in: only its length is bounded, so that a hash of
    /// an over-long input is never computed.
    pub fn parse_given(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > 128 {
            return Err("must be at most 128 characters".into());
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::parse_length("ééééééé").is_err()); // 7 chars, 14 bytes
        assert!(Password::parse_length("éééééééé").is_ok());
        assert!(Password::parse_length(&"é".repeat(128)).is_ok());
        assert!(Password::parse_length(&"é".repeat(129)).is_err());
    }

    #[test]
    fn common_passwords_are_refused() {
        for common in [
            "password",
            "12345678",
            "password1",
            "qwertyuiop",
            "iloveyou1",
            "Password123",
        ] {
            assert!(
                Password::parse_new(common, &[]).is_err(),
                "{common} was accepted"
            );
        }
    }

    #[test]
    fn passwords_built_from_the_email_are_refused() {
        assert!(Password::parse_new("adalovelace", &["adalovelace", "example", "org"]).is_err());
    }

    #[test]
    fn ordinary_strong_passwords_pass_unchanged() {
        let p = Password::parse_new("  Correct horse Battery staple  ", &[]).unwrap();
        assert_eq!(p.expose(), "  Correct horse Battery staple  ");
        assert!(Password::parse_new("tr3s-l0ngue phrase été", &[]).is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let p = Password::parse_given("secret-value").unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
