//! The product's heart, with no I/O: how bodies are cut, who may read what, and the one
//! function that turns an article and a decision into the text a reader receives.

pub mod access;
pub mod billing;
pub mod gifts;
pub mod meter;
pub mod seats;
pub mod teaser;

pub use access::{decide, Decision, ReaderKind, Reason, SeatVerdict, SubscriptionState};

use serde::Serialize;

use crate::domain::Language;

/// The stored, precomputed text of an article.
pub trait ArticleText {
    /// The full text (marker removed).
    fn full_text(&self) -> &str;
    /// The teaser's length in bytes of the full text.
    fn teaser_bytes(&self) -> usize;
    /// The share left to read after the teaser, in hundredths of a percent.
    fn percent_left_hundredths(&self) -> u32;
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PaywallNotice {
    pub reason: Reason,
    pub message: String,
}

/// What a reader is shown of an article.
#[derive(Debug, Clone, PartialEq)]
pub struct Visible<'a> {
    pub body: &'a str,
    pub truncated: bool,
    pub percent_left: f64,
    pub paywall: Option<PaywallNotice>,
}

/// The only way article text leaves the service: the full text when the decision says
/// so, otherwise the stored teaser with its notice.
pub fn visible_text<A: ArticleText + ?Sized>(
    article: &A,
    decision: Decision,
    language: Language,
) -> Visible<'_> {
    match decision {
        Decision::Full => Visible {
            body: article.full_text(),
            truncated: false,
            percent_left: 0.0,
            paywall: None,
        },
        Decision::Teaser(reason) => {
            let text = article.full_text();
            // The stored offset is a char boundary by construction; if the row were ever
            // corrupted, fall back to showing nothing rather than panicking or leaking.
            let body = text.get(..article.teaser_bytes()).unwrap_or("");
            let hundredths = article.percent_left_hundredths();
            Visible {
                body,
                truncated: true,
                percent_left: teaser::percent_value(hundredths),
                paywall: Some(PaywallNotice {
                    reason,
                    message: reason.message(hundredths, language),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stored {
        text: String,
        teaser_bytes: usize,
        hundredths: u32,
    }

    impl ArticleText for Stored {
        fn full_text(&self) -> &str {
            &self.text
        }
        fn teaser_bytes(&self) -> usize {
            self.teaser_bytes
        }
        fn percent_left_hundredths(&self) -> u32 {
            self.hundredths
        }
    }

    fn stored() -> Stored {
        let p = teaser::prepare(
            "Premier paragraphe.\n\n<!-- paywall -->\n\nLa suite, réservée.",
            0.4,
        )
        .unwrap();
        Stored {
            text: p.text,
            teaser_bytes: p.teaser_bytes,
            hundredths: p.percent_left_hundredths,
        }
    }

    #[test]
    fn full_text_has_no_notice() {
        let a = stored();
        let v = visible_text(&a, Decision::Full, Language::En);
        assert_eq!(v.body, "Premier paragraphe.\n\nLa suite, réservée.");
        assert!(!v.truncated);
        assert_eq!(v.percent_left, 0.0);
        assert!(v.paywall.is_none());
    }

    #[test]
    fn french_readers_get_the_french_sentence() {
        let a = stored();
        let v = visible_text(&a, Decision::Teaser(Reason::MeterExhausted), Language::Fr);
        assert_eq!(
            v.paywall.unwrap().message,
            "Il vous reste 52,50\u{a0}% de cet article à lire. La suite est réservée aux abonnés."
        );
        let v = visible_text(&a, Decision::Teaser(Reason::LoginRequired), Language::Fr);
        assert!(v
            .paywall
            .unwrap()
            .message
            .ends_with("réservée aux lecteurs inscrits."));
    }

    #[test]
    fn teaser_carries_the_message() {
        let a = stored();
        let v = visible_text(
            &a,
            Decision::Teaser(Reason::SubscriptionRequired),
            Language::En,
        );
        assert_eq!(v.body, "Premier paragraphe.");
        assert!(v.truncated);
        assert_eq!(v.percent_left, 52.5);
        let notice = v.paywall.unwrap();
        assert_eq!(
            notice.message,
            "You have 52.50% of this article left to read. The following is for subscribers only."
        );
        let v = visible_text(&a, Decision::Teaser(Reason::LoginRequired), Language::En);
        assert_eq!(
            v.paywall.unwrap().message,
            "You have 52.50% of this article left to read. The following is for registered readers only."
        );
    }

    #[test]
    fn a_corrupt_offset_shows_nothing() {
        let mut a = stored();
        a.teaser_bytes = 10_000;
        let v = visible_text(&a, Decision::Teaser(Reason::MeterExhausted), Language::En);
        assert_eq!(v.body, "");
    }
}
