//! Article management for editors and admins.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::extract::{page_cursor, page_limit, query_choice, ApiJson};
use super::views::{AdminArticle, AdminArticleSummary, Page};
use crate::app::articles::{self, merge, record, slug_conflict, ArticleInput, Draft};
use crate::auth::{AuthAccount, Authenticated};
use crate::domain::{ArticleStatus, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{now_ts, ArticleRow, AuditEntry};

fn require_editor(caller: &AuthAccount) -> ApiResult<()> {
    caller.require(&[Role::Editor, Role::Admin])
}

fn created(row: &ArticleRow) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/admin/articles/{}", row.meta.slug),
        ))
        .json(AdminArticle::from(row))
}

#[utoipa::path(post, operation_id = "admin_articles_create", path = "/v1/admin/articles", tag = "admin articles", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["articles"])), request_body = ArticleInput,
    responses((status = 201, description = "The article with its teaser cut", body = AdminArticle),
        (status = 409, description = "`slug_taken`", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Write an article
pub async fn create(
    state: web::Data<AppState>,
    caller: Authenticated,
    input: ApiJson<ArticleInput>,
) -> ApiResult<HttpResponse> {
    require_editor(&caller.0)?;
    let now = now_ts();
    let draft = merge(input.into_inner()?, None, now).map_err(ApiError::Validation)?;
    let audit = AuditEntry::new(
        Some(&caller.0.account_id),
        "article.create",
        "article",
        None,
    );
    let row = articles::create(
        &state.store,
        state.settings.teaser_ratio,
        &draft,
        &audit,
        now,
    )
    .await?;
    Ok(created(&row))
}

async fn find(state: &AppState, slug: &str) -> ApiResult<ArticleRow> {
    state
        .store
        .article_by_slug(slug)
        .await?
        .ok_or(ApiError::NotFound("no article has this slug"))
}

#[utoipa::path(get, operation_id = "admin_articles_get", path = "/v1/admin/articles/{slug}", tag = "admin articles", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["articles"])), params(("slug" = String, Path, description = "The article's slug")),
    responses((status = 200, description = "The article as editors see it", body = AdminArticle)))]
/// One article for editors, with its source
pub async fn get(
    state: web::Data<AppState>,
    caller: Authenticated,
    slug: web::Path<String>,
) -> ApiResult<HttpResponse> {
    require_editor(&caller.0)?;
    let row = find(&state, &slug).await?;
    Ok(HttpResponse::Ok().json(AdminArticle::from(&row)))
}

#[utoipa::path(patch, operation_id = "admin_articles_patch", path = "/v1/admin/articles/{slug}", tag = "admin articles", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["articles"])), params(("slug" = String, Path, description = "The article's slug")), request_body = ArticleInput,
    responses((status = 200, description = "The updated article, its teaser cut again", body = AdminArticle),
        (status = 409, description = "`slug_taken`", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Change an article
pub async fn patch(
    state: web::Data<AppState>,
    caller: Authenticated,
    slug: web::Path<String>,
    input: ApiJson<ArticleInput>,
) -> ApiResult<HttpResponse> {
    require_editor(&caller.0)?;
    let row = find(&state, &slug).await?;
    let current = Draft::of(&row).ok_or_else(|| ApiError::internal("unreadable article row"))?;
    let draft =
        merge(input.into_inner()?, Some(&current), now_ts()).map_err(ApiError::Validation)?;
    let slug = draft
        .slug
        .clone()
        .ok_or_else(|| ApiError::internal("stored slug is not valid"))?;
    let record = record(&draft, &slug, state.settings.teaser_ratio)?;
    let audit = AuditEntry::new(
        Some(&caller.0.account_id),
        "article.update",
        "article",
        None,
    );
    let updated = state
        .store
        .update_article(&row.meta.id, &record, Some(&audit), now_ts())
        .await
        .map_err(slug_conflict)?
        .ok_or(ApiError::NotFound("no article has this slug"))?;
    Ok(HttpResponse::Ok().json(AdminArticle::from(&updated)))
}

#[utoipa::path(delete, operation_id = "admin_articles_delete", path = "/v1/admin/articles/{slug}", tag = "admin articles", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["articles"])), params(("slug" = String, Path, description = "The article's slug")),
    responses((status = 204, description = "Deleted")))]
/// Delete an article
pub async fn delete(
    state: web::Data<AppState>,
    caller: Authenticated,
    slug: web::Path<String>,
) -> ApiResult<HttpResponse> {
    require_editor(&caller.0)?;
    let audit = AuditEntry::new(
        Some(&caller.0.account_id),
        "article.delete",
        "article",
        None,
    );
    if state
        .store
        .delete_article(&slug, Some(&audit), now_ts())
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("no article has this slug"))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminListQuery {
    #[param(value_type = Option<ArticleStatus>)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "admin_articles_list", path = "/v1/admin/articles", tag = "admin articles", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["articles"])), params(AdminListQuery),
    responses((status = 200, description = "A page of articles, drafts included, newest first", body = Page<AdminArticleSummary>)))]
/// Articles for editors, drafts included
pub async fn list(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<AdminListQuery>,
) -> ApiResult<HttpResponse> {
    require_editor(&caller.0)?;
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let status = match query_choice(&query.status) {
        None => None,
        Some(raw) => Some(
            ArticleStatus::parse(raw)
                .ok_or_else(|| ApiError::BadRequest("status must be draft or published".into()))?,
        ),
    };
    let rows = state
        .store
        .list_all_articles(status.map(ArticleStatus::as_str), cursor.as_ref(), limit)
        .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |r| (r.created_at, &r.id),
        |r| AdminArticleSummary::from(r),
    );
    Ok(HttpResponse::Ok().json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> ArticleInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_create_needs_its_four_fields() {
        let errors = merge(input("{}"), None, 0).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "section", "body", "access"]);
    }

    #[test]
    fn publishing_without_a_date_publishes_now() {
        let draft = merge(
            input(r#"{"title":"T","body":"B","section":"s","access":"free","status":"published"}"#),
            None,
            1_000,
        )
        .unwrap();
        assert_eq!(draft.published_at, Some(1_000));
        assert_eq!(draft.status, ArticleStatus::Published);
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name_and_clears_what_it_nulls() {
        let current = merge(
            input(r#"{"title":"T","body":"B","section":"s","access":"free","author":"Ada","teaser_ratio":0.5}"#),
            None,
            0,
        )
        .unwrap();
        let patched = merge(
            input(r#"{"author":null,"title":"  New  "}"#),
            Some(&current),
            0,
        )
        .unwrap();
        assert_eq!(patched.title, "New");
        assert_eq!(patched.author, None);
        assert_eq!(patched.teaser_ratio, Some(0.5));
        assert_eq!(patched.status, ArticleStatus::Draft);
        let errors = merge(
            input(r#"{"title":null,"teaser_ratio":1.0,"slug":"Bad Slug"}"#),
            Some(&current),
            0,
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "slug", "teaser_ratio"]);
    }
}
