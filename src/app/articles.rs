//! Writing an article: the fields an editor gives, checked all at once, the teaser cut
//! measured, a slug made from the title when none is given. The editor's routes and
//! `paywall import-articles` both write through here.

use serde::Deserialize;

use crate::domain::{parse_rfc3339, AccessLevel, ArticleStatus, Slug};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::paywall::teaser;
use crate::store::{ArticleFields, ArticleRecord, ArticleRow, AuditEntry, Store, StoreError};

const MAX_TITLE: usize = 300;
const MAX_SECTION: usize = 64;
const MAX_STANDFIRST: usize = 2_000;
const MAX_AUTHOR: usize = 200;

use crate::domain::nullable;
/// The fields of a create or a patch. Absent is `None`; `null` is `Some(None)`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    #[schema(max_length = 300)]
    #[serde(default, deserialize_with = "nullable")]
    pub title: Option<Option<String>>,
    /// Markdown (CommonMark); a block `<!-- paywall -->` marks where the teaser ends.
    /// Raw HTML (blocks, inline tags, comments) is refused with 422 `validation_failed`
    /// on `body`, since a teaser cut inside it could leave an element open; `<` in
    /// prose and HTML inside code spans or fences are text. `paywall import-articles`
    /// converts HTML bodies to Markdown.
    #[serde(default, deserialize_with = "nullable")]
    pub body: Option<Option<String>>,
    #[schema(max_length = 64)]
    #[serde(default, deserialize_with = "nullable")]
    pub section: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub access: Option<Option<AccessLevel>>,
    /// Lowercase letters, digits and single hyphens; made from the title when absent.
    #[schema(max_length = 100, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    #[serde(default, deserialize_with = "nullable")]
    pub slug: Option<Option<String>>,
    #[schema(max_length = 2000)]
    #[serde(default, deserialize_with = "nullable")]
    pub standfirst: Option<Option<String>>,
    #[schema(max_length = 200)]
    #[serde(default, deserialize_with = "nullable")]
    pub author: Option<Option<String>>,
    /// The share of the body the teaser may take, strictly between 0 and 1; null for the default.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    pub teaser_ratio: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub status: Option<Option<ArticleStatus>>,
    /// RFC 3339; a published article with a future date stays hidden until then.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = DateTime)]
    pub published_at: Option<Option<String>>,
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
    pub fn of(row: &ArticleRow) -> Option<Draft> {
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
pub fn record(draft: &Draft, slug: &Slug, default_ratio: f64) -> Result<ArticleRecord, ApiError> {
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

/// How many numbered variants of a title's slug are tried before giving up.
const AUTO_SLUG_ATTEMPTS: usize = 50;

/// The slugs an article without one may take, in order: its title's, then that
/// numbered (`-2`, `-3` ...).
pub fn slug_candidates(title: &str) -> impl Iterator<Item = Slug> {
    let base = Slug::from_title(title).unwrap_or_else(Slug::fallback);
    (1u32..).map(move |n| {
        if n == 1 {
            base.clone()
        } else {
            base.with_suffix(n)
        }
    })
}

/// Field errors in one line, for a report: `title: is required; body: ...`.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Writes a new article. Without a slug, one is made from the title, numbered if the
/// title's is taken. `SlugTaken` when a given slug is.
pub async fn create(
    store: &Store,
    default_ratio: f64,
    draft: &Draft,
    audit: &AuditEntry,
    now: i64,
) -> ApiResult<ArticleRow> {
    if let Some(slug) = &draft.slug {
        return store
            .insert_article(&record(draft, slug, default_ratio)?, Some(audit), now)
            .await
            .map_err(slug_conflict);
    }
    let mut article = record(draft, &Slug::fallback(), default_ratio)?;
    for slug in slug_candidates(&draft.title).take(AUTO_SLUG_ATTEMPTS) {
        if store.slug_exists(slug.as_str()).await? {
            continue;
        }
        article.slug = slug.as_str().to_string();
        match store.insert_article(&article, Some(audit), now).await {
            Ok(row) => return Ok(row),
            Err(StoreError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::validation(
        "slug",
        "could not be made from the title; give one",
    ))
}

pub fn slug_conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict => ApiError::SlugTaken,
        other => other.into(),
    }
}
