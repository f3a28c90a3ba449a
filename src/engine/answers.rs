//! Ready-to-send answers, cached by (article, version, decision, renderer): every reader
//! whose read comes to the same decision on the same version of an article gets the
//! same bytes, made once. They live beside the cached article (see `CachedArticle`), so
//! they go when it does, and a new version of the article starts with none; the store's
//! rows know nothing of them.
//!
//! One slot per decision and renderer, chosen by an exhaustive match: a new reason or a
//! new renderer does not compile until it has a slot of its own.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::paywall::{Decision, Reason};

/// What turns a decision into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    /// The API's `ArticleView`, with `"meter":null` as its last member (the reader's
    /// own meter goes in its place).
    Json,
}

/// The answers of one renderer, one per decision, each made on first use.
#[derive(Debug, Default)]
struct PerDecision {
    full: OnceLock<Bytes>,
    login_required: OnceLock<Bytes>,
    subscription_required: OnceLock<Bytes>,
    subscription_expired: OnceLock<Bytes>,
    meter_exhausted: OnceLock<Bytes>,
    reading_elsewhere: OnceLock<Bytes>,
}

impl PerDecision {
    fn slot(&self, decision: Decision) -> &OnceLock<Bytes> {
        match decision {
            Decision::Full => &self.full,
            Decision::Teaser(Reason::LoginRequired) => &self.login_required,
            Decision::Teaser(Reason::SubscriptionRequired) => &self.subscription_required,
            Decision::Teaser(Reason::SubscriptionExpired) => &self.subscription_expired,
            Decision::Teaser(Reason::MeterExhausted) => &self.meter_exhausted,
            Decision::Teaser(Reason::ReadingElsewhere) => &self.reading_elsewhere,
        }
    }
}

/// Every ready answer of one version of one article.
#[derive(Debug, Default)]
pub struct ReadyAnswers {
    json: PerDecision,
}

impl ReadyAnswers {
    /// The answer `renderer` makes for `decision`: the one made before, else `make`'s
    /// (kept for the next reader; when two readers race, both get the first one kept).
    pub fn get_or_make<E>(
        &self,
        decision: Decision,
        renderer: Renderer,
        make: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let slot = match renderer {
            Renderer::Json => &self.json,
        }
        .slot(decision);
        if let Some(ready) = slot.get() {
            return Ok(ready.clone());
        }
        let made = make()?;
        Ok(slot.get_or_init(|| made).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_decision_has_its_own_answer_made_once() {
        let answers = ReadyAnswers::default();
        let decisions = [
            Decision::Full,
            Decision::Teaser(Reason::LoginRequired),
            Decision::Teaser(Reason::SubscriptionRequired),
            Decision::Teaser(Reason::SubscriptionExpired),
            Decision::Teaser(Reason::MeterExhausted),
            Decision::Teaser(Reason::ReadingElsewhere),
        ];
        for (i, decision) in decisions.into_iter().enumerate() {
            let made = answers
                .get_or_make(decision, Renderer::Json, || {
                    Ok::<_, ()>(Bytes::from(i.to_string()))
                })
                .unwrap();
            assert_eq!(made, Bytes::from(i.to_string()));
        }
        for (i, decision) in decisions.into_iter().enumerate() {
            let again = answers
                .get_or_make(decision, Renderer::Json, || -> Result<Bytes, ()> {
                    panic!("made twice")
                })
                .unwrap();
            assert_eq!(again, Bytes::from(i.to_string()));
        }
        let failed = ReadyAnswers::default()
            .get_or_make(Decision::Full, Renderer::Json, || Err::<Bytes, _>("no"));
        assert_eq!(failed, Err("no"), "a failure is not kept");
    }
}
