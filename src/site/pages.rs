//! The pages and their forms.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;

use super::i18n::{self, Texts};
use super::render;
use super::{local_path, signed_in_cookies, signed_out_cookies, Chrome, Visit};
use crate::app::reading::{self, ReadRequest};
use crate::app::{accounts, sessions};
use crate::auth::client::client_address;
use crate::domain::AccessLevel;
use crate::error::ApiError;
use crate::paywall::{self, Decision, Reason};
use crate::routes::extract::RawBody;
use crate::state::AppState;
use crate::store::{now_ts, ArticleSummaryRow, Cursor};

/// Articles on the front page at most.
const FRONT_ARTICLES: u32 = 40;
const SECTION_PAGE: u32 = 20;
const READ_ALSO: usize = 3;

/// An article in a list.
pub struct Item {
    pub slug: String,
    pub title: String,
    pub standfirst: Option<String>,
    pub label: Option<&'static str>,
}

fn label(t: &Texts, access: AccessLevel) -> Option<&'static str> {
    match access {
        AccessLevel::Subscribers => Some(t.subscribers_label),
        AccessLevel::Registered => Some(t.registered_label),
        AccessLevel::Metered | AccessLevel::Free => None,
    }
}

fn item(t: &Texts, row: &ArticleSummaryRow) -> Item {
    Item {
        slug: row.slug.clone(),
        title: row.title.clone(),
        standfirst: row.standfirst.clone(),
        label: label(t, row.access),
    }
}

pub(super) fn rendered(template: &impl Template) -> Result<String, ApiError> {
    template.render().map_err(ApiError::internal)
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    chrome: Chrome,
    heading: &'a str,
    text: &'a str,
}

/// A page that only says something (not found, an error).
pub fn message(mut visit: Visit, status: StatusCode, heading: &str, text: &str) -> HttpResponse {
    let page = MessagePage {
        chrome: visit.chrome(heading),
        heading,
        text,
    };
    match page.render() {
        Ok(html) => visit.page(status, html),
        Err(error) => {
            tracing::error!(%error, "the message page could not be rendered");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub struct SectionItems {
    pub slug: String,
    pub name: String,
    pub items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "front.html")]
struct FrontPage {
    chrome: Chrome,
    heading: String,
    sections: Vec<SectionItems>,
    older: Option<String>,
}

/// `/`: the newest articles, by section in the order of their newest article.
pub async fn front(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let listed = match state
        .engine
        .public_page(None, None, FRONT_ARTICLES, now_ts())
        .await
    {
        Ok(listed) => listed,
        Err(error) => return visit.error(&error.into()),
    };
    let mut sections: Vec<SectionItems> = Vec::new();
    for row in &listed.rows {
        let item = item(visit.t, row);
        match sections.iter_mut().find(|s| s.name == row.section) {
            Some(section) => section.items.push(item),
            None => sections.push(SectionItems {
                slug: row.section.clone(),
                name: row.section.clone(),
                items: vec![item],
            }),
        }
    }
    let page = FrontPage {
        chrome: visit.chrome(visit.t.front_title),
        heading: visit.t.front_title.to_string(),
        sections,
        older: None,
    };
    match rendered(&page) {
        Ok(html) => visit.page(StatusCode::OK, html),
        Err(error) => visit.error(&error),
    }
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
}

/// `/sections/{section}`: that section's articles, newest first, a page at a time.
pub async fn section(
    state: web::Data<AppState>,
    req: HttpRequest,
    section: web::Path<String>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let cursor = match query.cursor.as_deref() {
        None => None,
        Some(raw) => match Cursor::decode(raw) {
            Some(cursor) => Some(cursor),
            None => return visit.not_found(),
        },
    };
    let listed = match state
        .engine
        .public_page(Some(&section), cursor.as_ref(), SECTION_PAGE + 1, now_ts())
        .await
    {
        Ok(listed) => listed,
        Err(error) => return visit.error(&error.into()),
    };
    let rows = &listed.rows;
    if rows.is_empty() && cursor.is_none() {
        return visit.not_found();
    }
    let more = rows.len() > SECTION_PAGE as usize;
    let shown = &rows[..rows.len().min(SECTION_PAGE as usize)];
    let older = shown.last().filter(|_| more).map(|last| {
        let cursor = Cursor {
            key: last.published_at.unwrap_or(0),
            id: last.id.clone(),
        };
        format!(
            "/sections/{}?cursor={}",
            url::form_urlencoded::byte_serialize(section.as_bytes()).collect::<String>(),
            cursor.encode()
        )
    });
    let page = FrontPage {
        chrome: visit.chrome(section.as_str()),
        heading: section.to_string(),
        sections: vec![SectionItems {
            slug: section.to_string(),
            name: section.to_string(),
            items: shown.iter().map(|row| item(visit.t, row)).collect(),
        }],
        older,
    };
    match rendered(&page) {
        Ok(html) => visit.page(StatusCode::OK, html),
        Err(error) => visit.error(&error),
    }
}

#[derive(Template)]
#[template(path = "article.html")]
struct ArticlePage {
    chrome: Chrome,
    title: String,
    standfirst: Option<String>,
    description: String,
    section: String,
    section_slug: String,
    label: Option<&'static str>,
    author: Option<String>,
    published: Option<String>,
    minutes: usize,
    body_html: String,
    /// The part past the teaser, on a page whose reader may read it.
    gated_html: Option<String>,
    paywall: Option<String>,
    login_only: bool,
    /// For a subscriber whose seats are all held elsewhere: what the plan allows,
    /// above the "continue reading here" button.
    elsewhere: Option<String>,
    meter: Option<String>,
    read_also: Vec<Item>,
    next: String,
    json_ld: String,
    slug: String,
    /// A subscriber (or staff) sees the gift button.
    can_gift: bool,
}

#[derive(serde::Deserialize)]
pub struct ArticleQuery {
    gift: Option<String>,
}

/// `/articles/{slug}`: what the API would give this reader, as a page.
pub async fn article(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    query: web::Query<ArticleQuery>,
) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let now = now_ts();
    let reading = match reading::read(
        &state,
        ReadRequest {
            caller: &visit.caller,
            slug: &slug,
            gift: query.gift.as_deref(),
            meter_id: || crate::routes::articles::presented_meter_id(&req),
            address: || client_address(&req, &state.settings.trusted_proxies),
            now,
        },
    )
    .await
    {
        Ok(reading) => reading,
        Err(error) => return visit.error(&error),
    };
    if let Some(id) = reading.meter_id.as_ref().filter(|id| id.new) {
        let cookie = crate::routes::articles::meter_cookie(id.value.clone(), visit.secure());
        visit.set_cookie(cookie);
    }
    // Every signed-out reader with no meter to show gets the same page: made once per
    // version of the article, decision and language, like the JSON answers.
    let shared = (visit.account().is_none() && reading.meter.is_none()).then(|| {
        state
            .engine
            .page_key(&reading.article, reading.decision, visit.language)
    });
    if let Some(ready) = shared.as_ref().and_then(|key| state.engine.page(key)) {
        return visit.page(StatusCode::OK, ready);
    }
    let row = &reading.article.row;
    let t = visit.t;
    let visible = paywall::visible_text(row, reading.decision, visit.language);
    // A reader who may read all of a gated article gets the part past the teaser
    // marked, so that crawlers (JSON-LD `hasPart`) know which part is for subscribers.
    let gated_access = row.meta.access != AccessLevel::Free;
    let (body_html, gated_html) = match reading.decision {
        Decision::Full if gated_access => {
            let cut = usize::try_from(row.teaser_bytes).unwrap_or(0);
            let (open, rest) = visible.body.split_at(cut.min(visible.body.len()));
            (
                render::markdown(open),
                Some(render::markdown(rest)).filter(|html| !html.trim().is_empty()),
            )
        }
        _ => (render::markdown(visible.body), None),
    };
    let meter = reading
        .meter
        .map(|meter| meter_line(t, meter.remaining(), reading.decision));
    let read_also = match state
        .engine
        .public_page(Some(&row.meta.section), None, READ_ALSO as u32 + 1, now)
        .await
    {
        Ok(listed) => listed
            .rows
            .iter()
            .filter(|other| other.slug != row.meta.slug)
            .take(READ_ALSO)
            .map(|other| item(t, other))
            .collect(),
        Err(_) => Vec::new(),
    };
    let json_ld = json_ld(&state, row, gated_html.is_some());
    let page = ArticlePage {
        chrome: visit.chrome(row.meta.title.as_str()),
        title: row.meta.title.clone(),
        standfirst: row.meta.standfirst.clone(),
        description: row.meta.standfirst.clone().unwrap_or_default(),
        section: row.meta.section.clone(),
        section_slug: url::form_urlencoded::byte_serialize(row.meta.section.as_bytes()).collect(),
        label: label(t, row.meta.access),
        author: row.meta.author.clone(),
        published: row
            .meta
            .published_at
            .map(|at| i18n::date(at, visit.language)),
        minutes: paywall::teaser::reading_time_minutes(
            usize::try_from(row.meta.word_count).unwrap_or(0),
        ),
        body_html,
        gated_html,
        paywall: visible
            .paywall
            .as_ref()
            .map(|notice| notice.message.clone()),
        login_only: matches!(reading.decision, Decision::Teaser(Reason::LoginRequired)),
        elsewhere: match (reading.decision, visit.account()) {
            (Decision::Teaser(Reason::ReadingElsewhere), Some(account)) => {
                Some(match account.seats {
                    1 => t.seats_one.to_string(),
                    n => format!("{} {n} {}", t.seats_many.0, t.seats_many.1),
                })
            }
            _ => None,
        },
        meter,
        read_also,
        next: req.uri().path().to_string(),
        json_ld,
        slug: row.meta.slug.clone(),
        can_gift: visit
            .account()
            .is_some_and(|a| a.reader_kind().reads_everything()),
    };
    match rendered(&page) {
        Ok(mut html) => {
            if shared.is_some() {
                // A kept page holds what it is, not the room the template grew into
                // (up to twice the page: about 2.5 KiB more for each article's page).
                html.shrink_to_fit();
            }
            let html = Bytes::from(html);
            if let Some(key) = shared {
                state.engine.keep_page(key, html.clone());
            }
            visit.page(StatusCode::OK, html)
        }
        Err(error) => visit.error(&error),
    }
}

/// The meter after this read: how many free articles are left, or that none are.
fn meter_line(t: &Texts, remaining: u32, decision: Decision) -> String {
    match (decision, remaining) {
        (Decision::Teaser(Reason::MeterExhausted), _) => t.meter_none.to_string(),
        (_, 0) => t.meter_last.to_string(),
        (_, 1) => t.meter_left_one.to_string(),
        (_, n) => format!("{n} {}", t.meter_left),
    }
}

/// `NewsArticle` for search engines: free or not, and where the page holds the
/// subscribers' part, which element it is in. Nothing of the text itself.
fn json_ld(state: &AppState, row: &crate::store::ArticleRow, holds_gated: bool) -> String {
    let meta = &row.meta;
    let mut value = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": meta.title,
        "articleSection": meta.section,
        "url": format!("{}/articles/{}", state.public_base, meta.slug),
        "dateModified": crate::domain::rfc3339(meta.updated_at),
        "isAccessibleForFree": meta.access == AccessLevel::Free,
    });
    if let Some(published) = meta.published_at {
        value["datePublished"] = crate::domain::rfc3339(published).into();
    }
    if let Some(author) = &meta.author {
        value["author"] = serde_json::json!({"@type": "Person", "name": author});
    }
    if let Some(standfirst) = &meta.standfirst {
        value["description"] = standfirst.clone().into();
    }
    if holds_gated {
        value["hasPart"] = serde_json::json!({
            "@type": "WebPageElement",
            "isAccessibleForFree": false,
            "cssSelector": ".gated",
        });
    }
    render::json_in_script(&value)
}

/// `POST /articles/{slug}/seat`: "continue reading here", as `POST /v1/me/seat`, then
/// back to the article, which this device now reads.
pub async fn seat(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: RawBody,
) -> HttpResponse {
    let visit = Visit::of(&state, &req).await;
    let form = match posted(&visit, &req, &state, body).await {
        Ok(form) => form,
        Err(error) => return visit.error(&error),
    };
    let article: String = url::form_urlencoded::byte_serialize(slug.as_bytes()).collect();
    if !form.allowed {
        return expired(visit);
    }
    let Some(account) = visit.account().cloned() else {
        return visit.redirect(&format!("/signin?next=/articles/{article}"));
    };
    match crate::app::seats::continue_here(&state, &account, now_ts()).await {
        Ok(()) => visit.redirect(&format!("/articles/{article}")),
        Err(error) => visit.error(&error),
    }
}

#[derive(Template)]
#[template(path = "gift.html")]
struct GiftPage {
    chrome: Chrome,
    title: String,
    slug: String,
    url: String,
    until: String,
}

/// `POST /articles/{slug}/gift`: a gift link, as `POST /v1/articles/{slug}/gifts` makes it.
pub async fn gift(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: RawBody,
) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let form = match posted(&visit, &req, &state, body).await {
        Ok(form) => form,
        Err(error) => return visit.error(&error),
    };
    let t = visit.t;
    if !form.allowed {
        return expired(visit);
    }
    let Some(account) = visit.account().cloned() else {
        let slug: String = url::form_urlencoded::byte_serialize(slug.as_bytes()).collect();
        return visit.redirect(&format!("/signin?next=/articles/{slug}"));
    };
    let now = time::OffsetDateTime::now_utc();
    match crate::app::gifts::give(&state, &account, &slug, now).await {
        Ok(link) => {
            let title = match reading::published(&state, &link.slug, now.unix_timestamp()).await {
                Ok(article) => article.row.meta.title.clone(),
                Err(_) => link.slug.clone(),
            };
            let page = GiftPage {
                chrome: visit.chrome(t.gift_title),
                title,
                slug: link.slug,
                url: link.url,
                until: i18n::date(link.expires_at, visit.language),
            };
            match rendered(&page) {
                Ok(html) => visit.page(StatusCode::CREATED, html),
                Err(error) => visit.error(&error),
            }
        }
        Err(error @ ApiError::RateLimited { .. }) => {
            let mut response = message(
                visit,
                StatusCode::TOO_MANY_REQUESTS,
                t.gift_title,
                t.gift_limit,
            );
            retry_after(&mut response, &error);
            response
        }
        Err(error) => visit.error(&error),
    }
}

/// A posted form: its fields, and whether it may act (its CSRF token matches this
/// browser's and it comes from this site: see `Visit::form_allowed`).
pub(super) struct Form {
    fields: std::collections::HashMap<String, String>,
    pub allowed: bool,
}

impl Form {
    /// A field as sent, empty when absent.
    pub fn field(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }
}

/// Reads a posted form (within the default body limit, 16 KiB).
pub(super) async fn posted(
    visit: &Visit,
    req: &HttpRequest,
    state: &AppState,
    body: RawBody,
) -> Result<Form, ApiError> {
    let body = body.into_inner()?;
    let fields: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let allowed = visit.form_allowed(req, state, fields.get("csrf").map_or("", String::as_str));
    Ok(Form { fields, allowed })
}

/// The answer to a form that may not act (no token, another token, another site).
pub(super) fn expired(visit: Visit) -> HttpResponse {
    let t = visit.t;
    message(visit, StatusCode::FORBIDDEN, t.error_title, t.form_expired)
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    chrome: Chrome,
    error: Option<&'static str>,
    email: String,
    next: String,
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn signin_page(
    mut visit: Visit,
    status: StatusCode,
    error: Option<&'static str>,
    email: String,
    next: &str,
) -> HttpResponse {
    let page = SigninPage {
        chrome: visit.form_chrome(visit.t.sign_in),
        error,
        email,
        next: local_path(next).to_string(),
    };
    match rendered(&page) {
        Ok(html) => visit.page(status, html),
        Err(error) => visit.error(&error),
    }
}

/// `GET /signin`.
pub async fn signin_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let visit = Visit::of(&state, &req).await;
    let next = query.next.clone().unwrap_or_else(|| "/".into());
    signin_page(visit, StatusCode::OK, None, String::new(), &next)
}

/// `POST /signin`: signs in as `POST /v1/auth/login` does, then back to `next`.
pub async fn signin(state: web::Data<AppState>, req: HttpRequest, body: RawBody) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let form = match posted(&visit, &req, &state, body).await {
        Ok(form) => form,
        Err(error) => return visit.error(&error),
    };
    let (email, next) = (form.field("email"), form.field("next"));
    let t = visit.t;
    if !form.allowed {
        return signin_page(
            visit,
            StatusCode::FORBIDDEN,
            Some(t.form_expired),
            email,
            &next,
        );
    }
    let signed = sessions::sign_in(
        &state,
        &email,
        form.field("password"),
        client_address(&req, &state.settings.trusted_proxies),
        crate::routes::auth::user_agent(&req),
    )
    .await;
    match signed {
        Ok(signed) => {
            for cookie in signed_in_cookies(&state, signed) {
                visit.set_cookie(cookie);
            }
            visit.redirect(local_path(&next))
        }
        Err(error) => {
            let (status, message) = match &error {
                ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, t.wrong_credentials),
                ApiError::AccountSuspended => (StatusCode::FORBIDDEN, t.suspended),
                ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, t.too_many),
                _ => return visit.error(&error),
            };
            let mut response = signin_page(visit, status, Some(message), email, &next);
            retry_after(&mut response, &error);
            response
        }
    }
}

pub(super) fn retry_after(response: &mut HttpResponse, error: &ApiError) {
    if let ApiError::RateLimited { retry_after_secs } = error {
        if let Ok(value) =
            actix_web::http::header::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, value);
        }
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    chrome: Chrome,
    error: Option<String>,
    email: String,
    display_name: String,
    email_error: Option<String>,
    name_error: Option<String>,
    password_error: Option<String>,
    next: String,
}

#[derive(Default)]
struct RegisterForm {
    email: String,
    display_name: String,
    next: String,
    error: Option<String>,
    email_error: Option<String>,
    name_error: Option<String>,
    password_error: Option<String>,
}

fn register_page(mut visit: Visit, status: StatusCode, form: RegisterForm) -> HttpResponse {
    let page = RegisterPage {
        chrome: visit.form_chrome(visit.t.register),
        error: form.error,
        email: form.email,
        display_name: form.display_name,
        email_error: form.email_error,
        name_error: form.name_error,
        password_error: form.password_error,
        next: local_path(&form.next).to_string(),
    };
    match rendered(&page) {
        Ok(html) => visit.page(status, html),
        Err(error) => visit.error(&error),
    }
}

/// `GET /register`.
pub async fn register_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let visit = Visit::of(&state, &req).await;
    let closed =
        (!state.settings.registration_open).then(|| visit.t.registration_closed.to_string());
    let form = RegisterForm {
        next: query.next.clone().unwrap_or_else(|| "/".into()),
        error: closed,
        ..RegisterForm::default()
    };
    register_page(visit, StatusCode::OK, form)
}

/// `POST /register`: registers as `POST /v1/auth/register` does, signs in, and goes
/// back to `next`.
pub async fn register(state: web::Data<AppState>, req: HttpRequest, body: RawBody) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let posted = match posted(&visit, &req, &state, body).await {
        Ok(form) => form,
        Err(error) => return visit.error(&error),
    };
    let t = visit.t;
    let mut form = RegisterForm {
        email: posted.field("email"),
        display_name: posted.field("display_name"),
        next: posted.field("next"),
        ..RegisterForm::default()
    };
    if !posted.allowed {
        form.error = Some(t.form_expired.to_string());
        return register_page(visit, StatusCode::FORBIDDEN, form);
    }
    let address = client_address(&req, &state.settings.trusted_proxies);
    let name = Some(form.display_name.trim().to_string()).filter(|n| !n.is_empty());
    let password = posted.field("password");
    let created = accounts::register(&state, address, now_ts(), || {
        Ok((form.email.clone(), name, password))
    })
    .await;
    let created = match created {
        Ok(created) => created,
        Err(error) => {
            let status = actix_web::ResponseError::status_code(&error);
            match &error {
                ApiError::Validation(errors) => {
                    for e in errors {
                        let message = Some(e.message.clone());
                        match e.field.as_str() {
                            "email" => form.email_error = message,
                            "display_name" => form.name_error = message,
                            _ => form.password_error = message,
                        }
                    }
                }
                ApiError::EmailTaken => form.email_error = Some(t.email_taken.to_string()),
                ApiError::RegistrationClosed => {
                    form.error = Some(t.registration_closed.to_string())
                }
                ApiError::RateLimited { .. } => form.error = Some(t.too_many.to_string()),
                _ => return visit.error(&error),
            }
            let mut response = register_page(visit, status, form);
            retry_after(&mut response, &error);
            return response;
        }
    };
    match sessions::start_session(&state, created.row, crate::routes::auth::user_agent(&req)).await
    {
        Ok(signed) => {
            for cookie in signed_in_cookies(&state, signed) {
                visit.set_cookie(cookie);
            }
            visit.redirect(local_path(&form.next))
        }
        Err(_) => visit.redirect("/signin"),
    }
}

/// `POST /signout`: ends this browser's session, then the front page.
pub async fn signout(state: web::Data<AppState>, req: HttpRequest, body: RawBody) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let form = match posted(&visit, &req, &state, body).await {
        Ok(form) => form,
        Err(error) => return visit.error(&error),
    };
    if !form.allowed {
        return expired(visit);
    }
    if let Some(account) = visit.account() {
        if let Err(error) = sessions::sign_out(&state, &account.session_id).await {
            return visit.error(&error);
        }
    }
    for cookie in signed_out_cookies() {
        visit.set_cookie(cookie);
    }
    visit.redirect("/")
}
