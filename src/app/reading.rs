//! Reading an article: one call takes the reader, the slug, a gift token and a meter id
//! and gives the article, the paywall's decision, the meter to show and the meter id to
//! hand out. The renderers (JSON in `routes::articles`, pages to come) only turn a
//! `Reading` into bytes through `paywall::visible_text`; none of them decides.

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::Caller;
use crate::domain::AccessLevel;
use crate::engine::meter::ChargeError;
use crate::engine::CachedArticle;
use crate::error::{ApiError, ApiResult};
use crate::paywall::access::{self, MeterVerdict};
use crate::paywall::meter::{Meter, MeterKey};
use crate::paywall::Decision;
use crate::state::AppState;
use crate::store::meter::ChargeRequest;

/// What a reader asks for.
pub struct ReadRequest<'a, M: Fn() -> Option<String>, A: Fn() -> IpAddr> {
    pub caller: &'a Caller,
    pub slug: &'a str,
    /// A gift token from the link, unverified.
    pub gift: Option<&'a str>,
    /// The meter id the reader sent back (header or cookie), unverified; asked only
    /// when the meter is consulted (finding it parses the request's cookies).
    pub meter_id: M,
    /// The client's address, asked only for a reader without a valid meter id (whose
    /// reads count against the address's daily cap).
    pub address: A,
    pub now: i64,
}

/// The answer to a read, before it is rendered.
pub struct Reading {
    pub article: Arc<CachedArticle>,
    pub decision: Decision,
    /// The meter that was consulted and is shown; none when no meter was needed.
    pub meter: Option<MeterShown>,
    /// The meter id to hand back, when an anonymous reader's meter was consulted.
    pub meter_id: Option<MeterId>,
}

/// A meter as the reader sees it after this read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterShown {
    pub limit: u32,
    pub used: u32,
    /// Unix seconds: the first instant of the next period.
    pub resets_at: i64,
}

impl MeterShown {
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }
}

/// A meter id for the reader to send back with later reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterId {
    pub value: String,
    /// Issued with this read (so worth a cookie), rather than the one the reader sent.
    pub new: bool,
}

/// A published article whose time has come, else 404 `not_found`.
pub async fn published(state: &AppState, slug: &str, now: i64) -> ApiResult<Arc<CachedArticle>> {
    state
        .engine
        .article(slug)
        .await?
        .filter(|article| article.row.is_public(now))
        .ok_or(ApiError::NotFound("no published article has this slug"))
}

/// Reads an article: the gift is checked, the meter consulted when the decision needs
/// it (and charged), and the paywall decides.
pub async fn read<M: Fn() -> Option<String>, A: Fn() -> IpAddr>(
    state: &AppState,
    request: ReadRequest<'_, M, A>,
) -> ApiResult<Reading> {
    let article = published(state, request.slug, request.now).await?;
    let access_level = article.row.meta.access;
    let reader = request.caller.reader_kind();
    let gift = request.gift.is_some_and(|token| {
        state
            .gift_keys
            .opens(token, &article.row.meta.id, request.now)
    });
    // A search engine's crawler, known by its published address ranges (through trusted
    // proxies only, never by its user agent), reads the whole text as a subscriber does;
    // the article page marks the subscribers' part for it.
    let crawler = matches!(request.caller, Caller::Anonymous)
        && access_level != AccessLevel::Free
        && !state.settings.crawler_ranges.is_empty()
        && {
            let address = (request.address)();
            state
                .settings
                .crawler_ranges
                .iter()
                .any(|range| range.contains(&address))
        };
    let (verdict, meter, meter_id) = if !crawler && access::needs_meter(reader, access_level, gift)
    {
        let consulted = consult_meter(state, &request, &article.row.meta.id).await?;
        (Some(consulted.0), Some(consulted.1), consulted.2)
    } else {
        (None, None, None)
    };
    let seat = match request.caller {
        Caller::Account(account)
            if access::needs_seat(reader, access_level, gift, account.seats) =>
        {
            Some(crate::app::seats::check(state, account, request.now).await?)
        }
        _ => None,
    };
    let decision = if crawler {
        Decision::Full
    } else {
        access::decide(reader, access_level, gift, verdict, seat)
    };
    crate::metrics::decision(decision);
    if gift && decision == Decision::Full && !reader.reads_everything() {
        crate::metrics::gift_read();
    }
    Ok(Reading {
        article,
        decision,
        meter,
        meter_id,
    })
}

/// Counts this read against the reader's meter: the account's own, the anonymous
/// reader's signed id, or, without a valid id, the client address's daily cap and a
/// fresh id handed out now.
async fn consult_meter<M: Fn() -> Option<String>, A: Fn() -> IpAddr>(
    state: &AppState,
    request: &ReadRequest<'_, M, A>,
    article_id: &str,
) -> ApiResult<(MeterVerdict, MeterShown, Option<MeterId>)> {
    let now = time::OffsetDateTime::from_unix_timestamp(request.now)
        .map_err(|_| ApiError::internal("the clock is out of range"))?;
    let settings = &state.settings;
    let presented = match request.caller {
        Caller::Account(_) => None,
        Caller::Anonymous => {
            (request.meter_id)().and_then(|value| Some((state.meter_ids.verify(&value)?, value)))
        }
    };
    let (meters, id) = match (request.caller, presented) {
        (Caller::Account(account), _) => (
            vec![Meter::new(
                &MeterKey::Account(account.account_id.clone()),
                settings.meter_registered,
                now,
            )],
            None,
        ),
        (Caller::Anonymous, Some((name, value))) => (
            vec![Meter::new(
                &MeterKey::Anonymous(name),
                settings.meter_anonymous,
                now,
            )],
            Some(MeterId { value, new: false }),
        ),
        (Caller::Anonymous, None) => {
            // Every read without an id costs the address's daily cap, re-reads of
            // articles it counted before included: each such read issues an id worth a
            // meter of its own, so a reader who drops the id each time gets at most
            // cap × the anonymous limit articles a day.
            let (value, name) = state.meter_ids.issue_named();
            let address = (request.address)();
            let meters = vec![
                Meter::new(
                    &MeterKey::Unidentified(address.to_string()),
                    settings.meter_unidentified_per_day,
                    now,
                )
                .counting_every_read(format!("id:{name}")),
                Meter::new(&MeterKey::Anonymous(name), settings.meter_anonymous, now),
            ];
            (meters, Some(MeterId { value, new: true }))
        }
    };
    let outcome = state
        .meter
        .charge(ChargeRequest {
            meters: meters.clone(),
            article_id: article_id.to_string(),
            now: request.now,
        })
        .await
        .map_err(|error| match error {
            ChargeError::Unavailable => {
                ApiError::Unavailable("the meter's database is not answering; try again shortly")
            }
            ChargeError::StorageFull => ApiError::StorageFull,
            ChargeError::Failed => ApiError::internal("a meter charge failed"),
        })?;
    if outcome.charged {
        crate::metrics::meter_charge();
    }
    // The meter shown is the reader's own (the last one), unless the address's daily
    // cap is what said no.
    let shown = if outcome.credit {
        meters.len() - 1
    } else {
        meters
            .iter()
            .zip(&outcome.used)
            .position(|(m, used)| *used >= m.limit)
            .unwrap_or(meters.len() - 1)
    };
    let meter = MeterShown {
        limit: meters[shown].limit,
        used: outcome.used.get(shown).copied().unwrap_or(0),
        resets_at: meters[shown].period_end,
    };
    let verdict = if outcome.credit {
        MeterVerdict::Credit
    } else {
        MeterVerdict::Exhausted
    };
    // A new id is handed out only with the read its issue paid for: an id issued after
    // the address's cap said no would open a meter the cap never counted.
    let id = id.filter(|id| outcome.credit || !id.new);
    Ok((verdict, meter, id))
}
