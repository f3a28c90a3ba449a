use unicode_normalization::UnicodeNormalization;

/// Unicode's default-ignorable code points: characters that render as nothing, so two
/// addresses that differ only by them look the same to a person.
fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

/// An email address: trimmed, normalized (NFKC, then lowercase and NFC), lowercased, at most 254 characters, shaped like an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.chars().any(invisible) {
            return Err(
                "must not contain invisible characters (such as a zero-width space)".into(),
            );
        }
        // One address, one account, however it was typed: compatibility forms (full-width
        // letters, ligatures) fold to their plain letters, combining accents compose
        // (NFKC), and case is folded; composed again, since lowercasing can decompose.
        let email: String = raw
            .nfkc()
            .collect::<String>()
            .to_lowercase()
            .nfc()
            .collect();
        if email.is_empty() {
            return Err("must not be empty".into());
        }
        if email.chars().count() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must be an email address such as reader@example.org".into());
        };
        let well_formed = !local.is_empty()
            && local.chars().count() <= 64
            && !local.contains('@')
            && domain.contains('.')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c));
        if !well_formed {
            return Err("must be an email address such as reader@example.org".into());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            Email::parse("  Ada.Lovelace@Example.ORG ")
                .unwrap()
                .as_str(),
            "ada.lovelace@example.org"
        );
    }

    #[test]
    fn one_address_however_it_is_typed() {
        let composed = Email::parse("zoé@exemple.fr").unwrap();
        assert_eq!(Email::parse("zoe\u{301}@exemple.fr").unwrap(), composed);
        assert_eq!(Email::parse("ZOE\u{301}@Exemple.FR").unwrap(), composed);
        assert_eq!(
            Email::parse("\u{ff41}da@example.org").unwrap().as_str(),
            "ada@example.org"
        );
    }

    #[test]
    fn refuses_invisible_characters() {
        for bad in [
            "ada\u{200b}@example.org",
            "ad\u{200d}a@example.org",
            "ada@exam\u{ad}ple.org",
            "\u{feff}ada@example.org",
            "ada\u{202e}@example.org",
            "ada\u{2060}@example.org",
        ] {
            let error = Email::parse(bad).unwrap_err();
            assert!(error.contains("invisible"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn accepts_plus_and_unicode_domains() {
        assert!(Email::parse("ada+news@example.org").is_ok());
        assert!(Email::parse("zoé@exemple.fr").is_ok());
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "ada@@example.org",
            "ada@exa mple.org",
            "a da@example.org",
            "ada@.example.org",
            "ada@example..org",
            "ada@-example.org",
            "<ada>@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
