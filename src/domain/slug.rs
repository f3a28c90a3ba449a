/// An article's URL name: lowercase ASCII letters, digits and single hyphens, 1 to 100
/// characters, neither starting nor ending with a hyphen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

pub const MAX_SLUG_LEN: usize = 100;

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_SLUG_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && !raw.contains("--");
        if ok {
            Ok(Slug(raw.to_string()))
        } else {
            Err(format!(
                "must be 1 to {MAX_SLUG_LEN} lowercase letters, digits and single hyphens, such as \"budget-vote-2027\""
            ))
        }
    }

    /// Makes a slug from a title: accents and other scripts are transliterated to
    /// ASCII, anything else becomes a hyphen. `None` when nothing usable is left.
    pub fn from_title(title: &str) -> Option<Self> {
        let ascii = deunicode::deunicode(title).to_ascii_lowercase();
        let mut slug = String::with_capacity(ascii.len());
        for c in ascii.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        // Cut at a word boundary when the title is long.
        if slug.len() > MAX_SLUG_LEN {
            slug.truncate(MAX_SLUG_LEN);
            if let Some(last_hyphen) = slug.rfind('-') {
                slug.truncate(last_hyphen);
            }
        }
        let slug = slug.trim_matches('-').to_string();
        Slug::parse(&slug).ok()
    }

    /// The slug of an article whose title has nothing to make one from.
    pub fn fallback() -> Self {
        Slug("article".to_string())
    }

    /// The same slug with a numeric suffix, for making an automatic slug unique.
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = format!("-{n}");
        let mut base = self.0.clone();
        base.truncate(MAX_SLUG_LEN - suffix.len());
        let base = base.trim_end_matches('-');
        Slug(format!("{base}{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn titles_become_ascii_slugs() {
        assert_eq!(
            Slug::from_title("L'Élysée répond : « Non ! »")
                .unwrap()
                .as_str(),
            "l-elysee-repond-non"
        );
        assert_eq!(
            Slug::from_title("  Budget 2027 — what changes?  ")
                .unwrap()
                .as_str(),
            "budget-2027-what-changes"
        );
        assert!(Slug::from_title("!!! ???").is_none());
        assert!(Slug::from_title("北京").is_some());
    }

    #[test]
    fn explicit_slugs_are_checked() {
        assert!(Slug::parse("budget-2027").is_ok());
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "Upper",
            "with space",
            "é",
            &"a".repeat(101),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn suffixes_keep_slugs_valid() {
        let long = Slug::parse(&"a".repeat(100)).unwrap();
        assert!(Slug::parse(long.with_suffix(12).as_str()).is_ok());
        assert_eq!(Slug::parse("x").unwrap().with_suffix(2).as_str(), "x-2");
    }

    proptest! {
        #[test]
        fn any_title_gives_a_valid_slug_or_none(title in "\\PC{0,200}") {
            if let Some(slug) = Slug::from_title(&title) {
                prop_assert!(Slug::parse(slug.as_str()).is_ok());
            }
        }
    }
}
