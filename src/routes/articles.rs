//! Public article routes: the list (never a body), the read, which goes through the
//! paywall's single text function after consulting the gift and the meter, and gifts.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::header::HeaderValue;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::extract::{page_cursor, page_limit, query_value};
use super::views::{rfc3339, ArticleSummary, ArticleView, MeterView, Page};
use crate::app::reading::{self, ReadRequest};
use crate::auth::client::client_address;
use crate::auth::{Authenticated, Caller};
use crate::engine::answers::Renderer;
use crate::engine::CachedArticle;
use crate::error::{ApiError, ApiResult};
use crate::paywall;
use crate::state::AppState;
use crate::store::now_ts;

pub const METER_COOKIE: &str = "paywall_meter";
pub const METER_HEADER: &str = "paywall-meter";

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this section.
    section: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "articles_list", path = "/v1/articles", tag = "articles", params(ListQuery),
    responses((status = 200, description = "A page of published articles, newest first; never a body", body = Page<ArticleSummary>)))]
/// Published articles, newest first
///
/// Anonymous readers are served; a token sent must be valid (else 401 `invalid_token`).
pub async fn list(
    state: web::Data<AppState>,
    _caller: Caller,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let section = query_value(&query.section);
    let listed = state
        .engine
        .public_page(section, cursor.as_ref(), limit, now_ts())
        .await?;
    // Made once per page and version of the articles, like an article's answers.
    let json = match listed.json.get() {
        Some(json) => json.clone(),
        None => {
            let page = Page::from_rows(
                listed.rows.iter().collect(),
                limit,
                |r| (r.published_at.unwrap_or(0), &r.id),
                |r| ArticleSummary::from(*r),
            );
            let mut json = serde_json::to_vec(&page).map_err(ApiError::internal)?;
            // Kept with the page: the answer's bytes, not the room it grew into.
            json.shrink_to_fit();
            listed.json.get_or_init(|| Bytes::from(json)).clone()
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// A gift token for this article: opens it in full without a meter credit.
    gift: Option<String>,
}

/// The meter id the reader sent: the header wins over the cookie.
pub fn presented_meter_id(req: &HttpRequest) -> Option<String> {
    let from_header = req
        .headers()
        .get(METER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match from_header {
        Some(value) => Some(value.to_string()),
        None => Some(req.cookie(METER_COOKIE)?.value().to_string()),
    }
}

pub fn meter_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(METER_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(CookieDuration::days(365))
        .finish()
}

#[utoipa::path(get, operation_id = "articles_read", path = "/v1/articles/{slug}", tag = "articles",
    params(("slug" = String, Path, description = "The article's slug"), ReadQuery,
        ("Paywall-Meter" = Option<String>, Header, description = "The meter id a previous answer handed out (or send the `paywall_meter` cookie)")),
    responses((status = 200, description = "The full text, or the teaser with the share left to read", body = ArticleView,
        headers(("Paywall-Meter" = String, description = "The reader's meter id, when the meter was consulted for an anonymous reader"))),
        (status = 404, description = "`not_found`: unknown or unpublished", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Read an article: the full text or the teaser
///
/// Anonymous readers are served; a token (`Authorization: Bearer` or the
/// `paywall_session` cookie) is optional and, when valid, reads as that account. A token
/// that is sent and not valid is 401 `invalid_token`, never served as anonymous.
pub async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    slug: web::Path<String>,
    query: web::Query<ReadQuery>,
) -> ApiResult<HttpResponse> {
    let reading = reading::read(
        &state,
        ReadRequest {
            caller: &caller,
            slug: &slug,
            gift: query.gift.as_deref(),
            meter_id: || presented_meter_id(&req),
            address: || client_address(&req, &state.settings.trusted_proxies),
            now: now_ts(),
        },
    )
    .await?;
    let mut response = HttpResponse::Ok();
    if let Some(id) = reading.meter_id {
        if let Ok(value) = HeaderValue::from_str(&id.value) {
            response.insert_header((METER_HEADER, value));
        }
        if id.new {
            response.cookie(meter_cookie(
                id.value,
                state.public_base.starts_with("https://"),
            ));
        }
    }
    // The same bytes for every reader with this decision; the meter, which is the
    // reader's own, goes in place of the final `null`.
    let ready = ready_answer(&reading.article, reading.decision, state.settings.language)?;
    response.content_type("application/json");
    Ok(match reading.meter {
        None => response.body(ready),
        Some(meter) => response.body(with_meter(&ready, &MeterView::from(meter))?),
    })
}

/// `ready` (an answer serialized with `"meter":null` as its last member) with `meter`
/// in that member's place: the ready bytes up to it, shared rather than copied, then
/// the meter, sent as two chunks of a known total length.
fn with_meter(ready: &Bytes, meter: &MeterView) -> ApiResult<Spliced> {
    const NO_METER: &[u8] = b"null}";
    if !ready.ends_with(NO_METER) {
        return Err(ApiError::internal(
            "a ready answer does not end with its meter",
        ));
    }
    let mut tail = serde_json::to_vec(meter).map_err(ApiError::internal)?;
    tail.push(b'}');
    Ok(Spliced {
        head: Some(ready.slice(..ready.len() - NO_METER.len())),
        tail: Some(Bytes::from(tail)),
    })
}

/// An answer in two parts (see `with_meter`).
struct Spliced {
    head: Option<Bytes>,
    tail: Option<Bytes>,
}

impl actix_web::body::MessageBody for Spliced {
    type Error = std::convert::Infallible;

    fn size(&self) -> actix_web::body::BodySize {
        let length = |part: &Option<Bytes>| part.as_ref().map_or(0, Bytes::len) as u64;
        actix_web::body::BodySize::Sized(length(&self.head) + length(&self.tail))
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        std::task::Poll::Ready(this.head.take().or_else(|| this.tail.take()).map(Ok))
    }
}

/// The answer for `decision` without a meter, made once per cached version of the
/// article (and through `visible_text`, like every other answer).
fn ready_answer(
    article: &CachedArticle,
    decision: paywall::Decision,
    language: crate::domain::Language,
) -> ApiResult<Bytes> {
    article.answers.get_or_make(decision, Renderer::Json, || {
        let visible = paywall::visible_text(&article.row, decision, language);
        ArticleView::new(&article.row, visible, None)
            .to_json()
            .map_err(ApiError::internal)
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GiftView {
    pub token: String,
    /// The link to hand on: the site's article page (`/articles/{slug}?gift=...`) when
    /// the site is on, else this API's (`/v1/articles/{slug}?gift=...`).
    pub url: String,
    pub article: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[utoipa::path(post, operation_id = "articles_create_gift", path = "/v1/articles/{slug}/gifts", tag = "articles", security(("bearer" = []), ("session_cookie" = [])),
    params(("slug" = String, Path, description = "The article's slug")),
    responses((status = 201, description = "A gift link that opens this article for anyone until it expires", body = GiftView),
        (status = 403, description = "`forbidden`: only subscribers may gift", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: this month's gifts are used up", body = crate::error::Problem, content_type = "application/problem+json")))]
/// A subscriber gifts an article: a link that opens it for anyone until it expires.
pub async fn create_gift(
    state: web::Data<AppState>,
    caller: Authenticated,
    slug: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let now = time::OffsetDateTime::now_utc();
    let gift = crate::app::gifts::give(&state, &caller.0, &slug, now).await?;
    Ok(HttpResponse::Created().json(GiftView {
        token: gift.token,
        url: gift.url,
        article: gift.slug,
        expires_at: rfc3339(gift.expires_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paywall::access::Reason;
    use crate::paywall::PaywallNotice;

    fn view(meter: Option<MeterView>) -> ArticleView<'static> {
        ArticleView {
            summary: ArticleSummary {
                slug: "a-slug".into(),
                title: "Un « titre » \"quoted\" null}".into(),
                standfirst: None,
                section: "news".into(),
                author: Some("Zoë".into()),
                access: "metered".into(),
                published_at: Some("2026-02-07T10:00:00Z".into()),
                updated_at: "2026-02-07T10:00:00Z".into(),
                word_count: 120,
                reading_time_minutes: 1,
            },
            body: "Le début… null}",
            truncated: true,
            percent_left: 60.64,
            paywall: Some(PaywallNotice {
                reason: Reason::MeterExhausted,
                message: "You have 60.64% of this article left to read.".into(),
            }),
            meter,
        }
    }

    #[actix_web::test]
    async fn a_meter_spliced_into_a_ready_answer_is_the_answer_serialized_with_it() {
        let meter = MeterView {
            limit: 3,
            used: 3,
            remaining: 0,
            resets_at: "2026-12-01T00:00:00Z".into(),
        };
        let ready = Bytes::from(serde_json::to_vec(&view(None)).unwrap());
        let spliced = with_meter(&ready, &meter).unwrap();
        let declared = actix_web::body::MessageBody::size(&spliced);
        let spliced = actix_web::body::to_bytes(spliced).await.unwrap();
        let whole = serde_json::to_vec(&view(Some(meter))).unwrap();
        assert_eq!(spliced.as_ref(), whole.as_slice());
        assert_eq!(
            declared,
            actix_web::body::BodySize::Sized(whole.len() as u64)
        );
        let parsed: serde_json::Value = serde_json::from_slice(&spliced).unwrap();
        assert_eq!(parsed["meter"]["used"], 3);
    }

    #[test]
    fn an_answer_that_does_not_end_with_its_meter_is_refused() {
        let meter = MeterView {
            limit: 3,
            used: 1,
            remaining: 2,
            resets_at: "2026-12-01T00:00:00Z".into(),
        };
        assert!(with_meter(&Bytes::from_static(b"{\"meter\":{}}"), &meter).is_err());
    }
}
