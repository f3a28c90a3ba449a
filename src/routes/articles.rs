//! Public article routes: the list (never a body) and the read, which goes through the
//! paywall's single text function.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::extract::{page_cursor, page_limit, query_value};
use super::views::{ArticleSummary, ArticleView, Page};
use crate::auth::Caller;
use crate::domain::AccessLevel;
use crate::error::{ApiError, ApiResult};
use crate::paywall::{self, access};
use crate::startup::AppState;
use crate::store::now_ts;

#[derive(Deserialize)]
pub struct ListQuery {
    section: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    _caller: Caller,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let section = query_value(&query.section);
    let rows = state
        .store
        .list_public_articles(section, cursor.as_ref(), limit, now_ts())
        .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |r| (r.published_at.unwrap_or(0), &r.id),
        |r| ArticleSummary::from(r),
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize)]
pub struct ReadQuery {
    /// Gift tokens are honoured once gifts exist; until then the parameter is ignored.
    #[allow(dead_code)]
    gift: Option<String>,
}

pub async fn read(
    state: web::Data<AppState>,
    caller: Caller,
    slug: web::Path<String>,
    _query: web::Query<ReadQuery>,
) -> ApiResult<HttpResponse> {
    let now = now_ts();
    let article = state
        .store
        .article_by_slug(&slug)
        .await?
        .filter(|article| article.is_public(now))
        .ok_or(ApiError::NotFound("no published article has this slug"))?;
    let access_level = AccessLevel::parse(&article.meta.access)
        .ok_or_else(|| ApiError::internal("unknown access level in database"))?;
    let reader = caller.reader_kind();
    // The meter arrives with its own store; until then a metered read that needs it
    // gets the teaser (decide treats an unanswered meter as exhausted).
    let decision = access::decide(reader, access_level, false, None);
    let visible = paywall::visible_text(&article, decision);
    Ok(HttpResponse::Ok().json(ArticleView::new(&article, visible, None)))
}
