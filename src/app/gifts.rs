//! Gift links: a subscriber opens one article to anyone for a while, within a monthly
//! allowance. The JSON route and the article page's gift button both come here.

use crate::auth::AuthAccount;
use crate::error::{ApiError, ApiResult};
use crate::paywall::meter;
use crate::state::AppState;
use crate::store::gifts::NewGift;

/// A gift link made.
pub struct GiftLink {
    pub token: String,
    pub url: String,
    pub slug: String,
    pub expires_at: i64,
}

/// Makes a gift link to `slug` for `account`: 403 unless it reads everything, 404 for
/// an article not published, 429 (until the month's end) once the month's allowance
/// is spent. The link opens the site's page when the site is on, else the API's.
pub async fn give(
    state: &AppState,
    account: &AuthAccount,
    slug: &str,
    now: time::OffsetDateTime,
) -> ApiResult<GiftLink> {
    if !account.reader_kind().reads_everything() {
        return Err(ApiError::Forbidden("only subscribers can gift articles"));
    }
    let article = &crate::app::reading::published(state, slug, now.unix_timestamp())
        .await?
        .row;
    let expires_at = now.unix_timestamp() + state.settings.gift_ttl_secs;
    let gift = state
        .gift_keys
        .issue(&article.meta.id, expires_at)
        .ok_or_else(|| ApiError::internal("article id is not a UUID"))?;
    let created = state
        .store
        .create_gift(&NewGift {
            gift_id: &gift.gift_id,
            account_id: &account.account_id,
            article_id: &article.meta.id,
            now: now.unix_timestamp(),
            expires_at,
            month_start: meter::period_starts_at(now).unix_timestamp(),
            limit: state.settings.gifts_per_month,
        })
        .await?;
    if !created {
        let resets = meter::period_resets_at(now).unix_timestamp();
        return Err(ApiError::RateLimited {
            retry_after_secs: u64::try_from(resets - now.unix_timestamp())
                .unwrap_or(1)
                .max(1),
        });
    }
    let page = if state.settings.site { "" } else { "/v1" };
    Ok(GiftLink {
        url: format!(
            "{}{page}/articles/{}?gift={}",
            state.public_base, article.meta.slug, gift.token
        ),
        token: gift.token,
        slug: article.meta.slug.clone(),
        expires_at,
    })
}
