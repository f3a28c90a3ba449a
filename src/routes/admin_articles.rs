//! Article management for editors and admins.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::extract::{nullable, page_cursor, page_limit, query_choice, ApiJson};
use super::views::{parse_rfc3339, AdminArticle, AdminArticleSummary, Page};
use crate::auth::{AuthAccount, Authenticated};
use crate::domain::{AccessLevel, ArticleStatus, Role, Slug};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::paywall::teaser;
use crate::state::AppState;
use crate::store::{now_ts, ArticleFields, ArticleRecord, ArticleRow, AuditEntry, StoreError};

const MAX_TITLE: usize = 300;
const MAX_SECTION: usize = 64;
const MAX_STANDFIRST: usize = 2_000;
const MAX_AUTHOR: usize = 200;

fn require_editor(caller: &AuthAccount) -> ApiResult<()> {
    caller.require(&[Role::Editor, Role::Admin])
}

/// The fields of a create or a patch. Absent is `None`; `null` is `Some(None)`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    #[schema(max_length = 300)]
    #[serde(default, deserialize_with = "nullable")]
    title: Option<Option<String>>,
    /// Markdown (CommonMark); a block `<!-- paywall -->` marks where the teaser ends.
    /// Raw HTML (blocks, inline tags, comments) is refused with 422 `validation_failed`
    /// on `body`, since a teaser cut inside it could leave an element open; `<` in
    /// prose and HTML inside code spans or fences are text. `paywall import-articles`
    /// converts HTML bodies to Markdown.
    #[serde(default, deserialize_with = "nullable")]
    body: Option<Option<String>>,
    #[schema(max_length = 64)]
    #[serde(default, deserialize_with = "nullable")]
    section: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    access: Option<Option<AccessLevel>>,
    /// Lowercase letters, digits and single hyphens; made from the title when absent.
    #[schema(max_length = 100, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    #[serde(default, deserialize_with = "nullable")]
    slug: Option<Option<String>>,
    #[schema(max_length = 2000)]
    #[serde(default, deserialize_with = "nullable")]
    standfirst: Option<Option<String>>,
    #[schema(max_length = 200)]
    #[serde(default, deserialize_with = "nullable")]
    author: Option<Option<String>>,
    /// The share of the body the teaser may take, strictly between 0 and 1; null for the default.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    teaser_ratio: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    status: Option<Option<ArticleStatus>>,
    /// RFC 3339; a published article with a future date stays hidden until then.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = DateTime)]
    published_at: Option<Option<String>>,
}

/// An article's written fields before the body is measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub title: String,
    pub body_source: String,
    pub section: String,
    pub access: AccessLevel,
    pub slug: Option<Slug>,
    pub standfirst: Option<String>,
    pub author: Option<String>,
    pub teaser_ratio: Option<f64>,
    pub status: ArticleStatus,
    pub published_at: Option<i64>,
}

impl Draft {
    fn of(row: &ArticleRow) -> Option<Draft> {
        Some(Draft {
            title: row.meta.title.clone(),
            body_source: row.body_source.clone(),
            section: row.meta.section.clone(),
            access: row.meta.access,
            slug: Slug::parse(&row.meta.slug).ok(),
            standfirst: row.meta.standfirst.clone(),
            author: row.meta.author.clone(),
            teaser_ratio: row.teaser_ratio,
            status: row.meta.status,
            published_at: row.meta.published_at,
        })
    }
}

struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    /// A required text: absent keeps `current`; null, blank or too long is an error.
    fn text(
        &mut self,
        field: &str,
        given: Option<Option<String>>,
        current: Option<String>,
        max: usize,
    ) -> Option<String> {
        match given {
            None if current.is_none() => {
                self.errors.push(FieldError::new(field, "is required"));
                None
            }
            None => current,
            Some(None) => {
                self.errors.push(FieldError::new(field, "must not be null"));
                None
            }
            Some(Some(value)) => self.bounded(field, value, max, false).flatten(),
        }
    }

    /// An optional text: absent keeps `current`; null or blank clears it.
    fn optional_text(
        &mut self,
        field: &str,
        given: Option<Option<String>>,
        current: Option<String>,
        max: usize,
    ) -> Option<String> {
        match given {
            None => current,
            Some(None) => None,
            Some(Some(value)) => self.bounded(field, value, max, true).flatten(),
        }
    }

    fn bounded(
        &mut self,
        field: &str,
        value: String,
        max: usize,
        blank_ok: bool,
    ) -> Option<Option<String>> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            if blank_ok {
                return Some(None);
            }
            self.errors
                .push(FieldError::new(field, "must not be blank"));
            return None;
        }
        if trimmed.chars().count() > max {
            self.errors.push(FieldError::new(
                field,
                format!("must be at most {max} characters"),
            ));
            return None;
        }
        Some(Some(trimmed.to_string()))
    }
}

/// Applies `input` over `current` (None for a create) and checks every field, reporting
/// all problems at once.
pub fn merge(
    input: ArticleInput,
    current: Option<&Draft>,
    now: i64,
) -> Result<Draft, Vec<FieldError>> {
    let mut check = Checker { errors: Vec::new() };
    let title = check.text(
        "title",
        input.title,
        current.map(|c| c.title.clone()),
        MAX_TITLE,
    );
    let section = check.text(
        "section",
        input.section,
        current.map(|c| c.section.clone()),
        MAX_SECTION,
    );
    let standfirst = check.optional_text(
        "standfirst",
        input.standfirst,
        current.and_then(|c| c.standfirst.clone()),
        MAX_STANDFIRST,
    );
    let author = check.optional_text(
        "author",
        input.author,
        current.and_then(|c| c.author.clone()),
        MAX_AUTHOR,
    );
    let body_source = match input.body {
        None => current.map(|c| c.body_source.clone()).or_else(|| {
            check.errors.push(FieldError::new("body", "is required"));
            None
        }),
        Some(None) => {
            check
                .errors
                .push(FieldError::new("body", "must not be null"));
            None
        }
        Some(Some(body)) => Some(body),
    };
    let access = match input.access {
        None => current.map(|c| c.access).or_else(|| {
            check.errors.push(FieldError::new("access", "is required"));
            None
        }),
        Some(None) => {
            check
                .errors
                .push(FieldError::new("access", "must not be null"));
            None
        }
        Some(access) => access,
    };
    let slug = match input.slug {
        None => current.and_then(|c| c.slug.clone()),
        Some(None) if current.is_none() => None,
        Some(None) => {
            check
                .errors
                .push(FieldError::new("slug", "must not be null"));
            None
        }
        Some(Some(raw)) => Slug::parse(&raw)
            .map_err(|m| check.errors.push(FieldError::new("slug", m)))
            .ok(),
    };
    let teaser_ratio = match input.teaser_ratio {
        None => current.and_then(|c| c.teaser_ratio),
        Some(None) => None,
        Some(Some(ratio)) if ratio > 0.0 && ratio < 1.0 => Some(ratio),
        Some(Some(_)) => {
            check.errors.push(FieldError::new(
                "teaser_ratio",
                "must be greater than 0 and less than 1",
            ));
            None
        }
    };
    let status = match input.status {
        None => current.map_or(ArticleStatus::Draft, |c| c.status),
        Some(None) => {
            check
                .errors
                .push(FieldError::new("status", "must not be null"));
            ArticleStatus::Draft
        }
        Some(Some(status)) => status,
    };
    let mut published_at = match input.published_at {
        None => current.and_then(|c| c.published_at),
        Some(None) => None,
        Some(Some(text)) => parse_rfc3339(&text).or_else(|| {
            check.errors.push(FieldError::new(
                "published_at",
                "must be an RFC 3339 date and time, such as 2026-02-07T10:00:00Z",
            ));
            None
        }),
    };
    if status == ArticleStatus::Published && published_at.is_none() {
        published_at = Some(now);
    }
    match (title, section, body_source, access) {
        (Some(title), Some(section), Some(body_source), Some(access))
            if check.errors.is_empty() =>
        {
            Ok(Draft {
                title,
                body_source,
                section,
                access,
                slug,
                standfirst,
                author,
                teaser_ratio,
                status,
                published_at,
            })
        }
        _ => Err(check.errors),
    }
}

/// Measures the body and makes the row to store. `slug` is the one decided by the caller.
fn record(draft: &Draft, slug: &Slug, default_ratio: f64) -> Result<ArticleRecord, ApiError> {
    let ratio = draft.teaser_ratio.unwrap_or(default_ratio);
    let prepared = teaser::prepare(&draft.body_source, ratio)
        .map_err(|e| ApiError::validation("body", e.to_string()))?;
    let fields = ArticleFields {
        slug: slug.as_str().to_string(),
        title: draft.title.clone(),
        standfirst: draft.standfirst.clone(),
        section: draft.section.clone(),
        author: draft.author.clone(),
        access: draft.access,
        status: draft.status,
        teaser_ratio: draft.teaser_ratio,
        published_at: draft.published_at,
    };
    Ok(ArticleRecord::new(fields, ratio, prepared))
}

fn created(row: &ArticleRow) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/admin/articles/{}", row.meta.slug),
        ))
        .json(AdminArticle::from(row))
}

/// How many numbered variants of a title's slug are tried before giving up.
const AUTO_SLUG_ATTEMPTS: u32 = 50;

#[utoipa::path(post, operation_id = "admin_articles_create", path = "/v1/admin/articles", tag = "admin articles", security(("bearer" = []), ("session_cookie" = [])), request_body = ArticleInput,
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
    let default_ratio = state.settings.teaser_ratio;
    if let Some(slug) = &draft.slug {
        let row = state
            .store
            .insert_article(&record(&draft, slug, default_ratio)?, Some(&audit), now)
            .await
            .map_err(slug_conflict)?;
        return Ok(created(&row));
    }
    // No slug given: one is made from the title, numbered if the title's is taken.
    let base = Slug::from_title(&draft.title).unwrap_or_else(Slug::fallback);
    let mut article = record(&draft, &base, default_ratio)?;
    for attempt in 1..=AUTO_SLUG_ATTEMPTS {
        let slug = if attempt == 1 {
            base.clone()
        } else {
            base.with_suffix(attempt)
        };
        if state.store.slug_exists(slug.as_str()).await? {
            continue;
        }
        article.slug = slug.as_str().to_string();
        match state
            .store
            .insert_article(&article, Some(&audit), now)
            .await
        {
            Ok(row) => return Ok(created(&row)),
            Err(StoreError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::validation(
        "slug",
        "could not be made from the title; give one",
    ))
}

fn slug_conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict => ApiError::SlugTaken,
        other => other.into(),
    }
}

async fn find(state: &AppState, slug: &str) -> ApiResult<ArticleRow> {
    state
        .store
        .article_by_slug(slug)
        .await?
        .ok_or(ApiError::NotFound("no article has this slug"))
}

#[utoipa::path(get, operation_id = "admin_articles_get", path = "/v1/admin/articles/{slug}", tag = "admin articles", security(("bearer" = []), ("session_cookie" = [])), params(("slug" = String, Path, description = "The article's slug")),
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

#[utoipa::path(patch, operation_id = "admin_articles_patch", path = "/v1/admin/articles/{slug}", tag = "admin articles", security(("bearer" = []), ("session_cookie" = [])), params(("slug" = String, Path, description = "The article's slug")), request_body = ArticleInput,
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

#[utoipa::path(delete, operation_id = "admin_articles_delete", path = "/v1/admin/articles/{slug}", tag = "admin articles", security(("bearer" = []), ("session_cookie" = [])), params(("slug" = String, Path, description = "The article's slug")),
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

#[utoipa::path(get, operation_id = "admin_articles_list", path = "/v1/admin/articles", tag = "admin articles", security(("bearer" = []), ("session_cookie" = [])), params(AdminListQuery),
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
