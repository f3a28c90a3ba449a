//! The reader's own pages: password reset, subscribing, the account.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::i18n::{self, Texts};
use super::pages::{expired, message, posted, rendered, retry_after};
use super::{signed_out_cookies, Chrome, Visit};
use crate::app::{billing, resets};
use crate::auth::client::client_address;
use crate::error::ApiError;
use crate::routes::extract::RawBody;
use crate::state::AppState;
use crate::store::{now_ts, AccountRow};

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
    email: String,
}

fn forgot_page(
    mut visit: Visit,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    email: String,
) -> HttpResponse {
    let page = ForgotPage {
        chrome: visit.form_chrome(visit.t.reset_title),
        notice,
        error,
        email,
    };
    match rendered(&page) {
        Ok(html) => visit.page(status, html),
        Err(error) => visit.error(&error),
    }
}

/// `GET /reset-password`.
pub async fn forgot_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::of(&state, &req).await;
    forgot_page(visit, StatusCode::OK, None, None, String::new())
}

/// `POST /reset-password`: as `POST /v1/auth/password-reset/request`; the same answer
/// whether or not an account has the email.
pub async fn forgot(state: web::Data<AppState>, req: HttpRequest, body: RawBody) -> HttpResponse {
    let visit = Visit::of(&state, &req).await;
    let form = match posted(&visit, &req, &state, body).await {
        Ok(form) => form,
        Err(error) => return visit.error(&error),
    };
    let t = visit.t;
    let email = form.field("email");
    if !form.allowed {
        return forgot_page(
            visit,
            StatusCode::FORBIDDEN,
            None,
            Some(t.form_expired.into()),
            email,
        );
    }
    let address = client_address(&req, &state.settings.trusted_proxies);
    match resets::request(&state, address, || Ok(email.clone())) {
        Ok(()) => forgot_page(
            visit,
            StatusCode::OK,
            Some(t.reset_sent),
            None,
            String::new(),
        ),
        Err(error @ ApiError::RateLimited { .. }) => {
            let mut response = forgot_page(
                visit,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                Some(t.too_many.into()),
                email,
            );
            retry_after(&mut response, &error);
            response
        }
        Err(ApiError::Validation(errors)) => {
            let message = errors.first().map(|e| e.message.clone());
            forgot_page(
                visit,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                message,
                email,
            )
        }
        Err(error) => visit.error(&error),
    }
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    chrome: Chrome,
    token: String,
    error: Option<String>,
}

fn reset_page(
    mut visit: Visit,
    status: StatusCode,
    token: &str,
    error: Option<String>,
) -> HttpResponse {
    let page = ResetPage {
        chrome: visit.form_chrome(visit.t.new_password_title),
        token: url::form_urlencoded::byte_serialize(token.as_bytes()).collect(),
        error,
    };
    match rendered(&page) {
        Ok(html) => visit.page(status, html),
        Err(error) => visit.error(&error),
    }
}

/// A dead link: say so, and offer a new one.
fn invalid_link(visit: Visit) -> HttpResponse {
    let t = visit.t;
    forgot_page(
        visit,
        StatusCode::UNAUTHORIZED,
        None,
        Some(t.reset_invalid.into()),
        String::new(),
    )
}

/// `GET /reset-password/{token}`: where the reset mail's link lands.
pub async fn reset_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let visit = Visit::of(&state, &req).await;
    match resets::account_of(&state, &token).await {
        Ok(_) => reset_page(visit, StatusCode::OK, &token, None),
        Err(ApiError::InvalidToken(_)) => invalid_link(visit),
        Err(error) => visit.error(&error),
    }
}

/// `POST /reset-password/{token}`: as `POST /v1/auth/password-reset`; every session of
/// the account ends, this browser's too.
pub async fn reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: RawBody,
) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let form = match posted(&visit, &req, &state, body).await {
        Ok(form) => form,
        Err(error) => return visit.error(&error),
    };
    let t = visit.t;
    if !form.allowed {
        return reset_page(
            visit,
            StatusCode::FORBIDDEN,
            &token,
            Some(t.form_expired.into()),
        );
    }
    let password = form.field("new_password");
    match resets::reset(&state, &token, password).await {
        Ok(()) => {
            for cookie in signed_out_cookies() {
                visit.set_cookie(cookie);
            }
            message(
                visit,
                StatusCode::OK,
                t.new_password_title,
                t.password_changed,
            )
        }
        Err(ApiError::InvalidToken(_)) => invalid_link(visit),
        Err(ApiError::Validation(errors)) => {
            let message = errors.first().map(|e| e.message.clone());
            reset_page(visit, StatusCode::UNPROCESSABLE_ENTITY, &token, message)
        }
        Err(error) => visit.error(&error),
    }
}

pub struct PlanItem {
    pub id: String,
    pub name: String,
    pub seats: String,
}

fn seats_line(t: &Texts, seats: i64) -> String {
    match seats {
        0 => t.any_devices.to_string(),
        1 => t.one_device.to_string(),
        n => format!("{n} {}", t.devices),
    }
}

#[derive(Template)]
#[template(path = "subscribe.html")]
struct SubscribePage {
    chrome: Chrome,
    plans: Vec<PlanItem>,
}

/// `GET /subscribe`: the plans on sale.
pub async fn subscribe_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let plans = match state.store.plans(true).await {
        Ok(plans) => plans,
        Err(error) => return visit.error(&error.into()),
    };
    // A plan's form leads to its checkout, on Stripe's site.
    let mut targets = String::new();
    for plan in &plans {
        if let Some(origin) = plan
            .checkout_url
            .as_deref()
            .and_then(crate::domain::origin_of)
        {
            if !targets.contains(&origin) {
                targets.push(' ');
                targets.push_str(&origin);
            }
        }
    }
    let page = SubscribePage {
        chrome: visit.chrome(visit.t.subscribe_title),
        plans: plans
            .iter()
            .filter(|plan| plan.checkout_url.is_some())
            .map(|plan| PlanItem {
                id: plan.id.clone(),
                name: plan.name.clone(),
                seats: seats_line(visit.t, plan.seats),
            })
            .collect(),
    };
    match rendered(&page) {
        Ok(html) => visit.page_with(StatusCode::OK, html, &targets),
        Err(error) => visit.error(&error),
    }
}

/// The signed-in reader's account row; none when the browser is signed out.
async fn own_account(state: &AppState, visit: &Visit) -> Result<Option<AccountRow>, ApiError> {
    match visit.account() {
        None => Ok(None),
        Some(account) => Ok(state.store.account_by_id(&account.account_id).await?),
    }
}

/// `POST /subscribe`: to the plan's checkout, as `POST /v1/me/checkout` gives it.
pub async fn subscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: RawBody,
) -> HttpResponse {
    let visit = Visit::of(&state, &req).await;
    let form = match posted(&visit, &req, &state, body).await {
        Ok(form) => form,
        Err(error) => return visit.error(&error),
    };
    if !form.allowed {
        return expired(visit);
    }
    let account = match own_account(&state, &visit).await {
        Ok(Some(account)) => account,
        Ok(None) => return visit.redirect("/signin?next=/subscribe"),
        Err(error) => return visit.error(&error),
    };
    let plan = form.field("plan");
    match billing::checkout(&state, &account, &plan).await {
        Ok(url) => visit.redirect(&url),
        Err(ApiError::Validation(_)) => visit.not_found(),
        Err(error) => visit.error(&error),
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    email: String,
    display_name: Option<String>,
    subscription: String,
    subscribed: bool,
    billing_url: Option<String>,
    sessions: Vec<String>,
    /// Slug, title, and until when each gift opens its article.
    gifts: Vec<(String, String, String)>,
}

fn subscription_line(
    t: &Texts,
    account: &AccountRow,
    language: crate::domain::Language,
    now: i64,
) -> (String, bool) {
    let Some(plan) = &account.subscription_plan else {
        return (t.no_subscription.to_string(), false);
    };
    match account.subscription_expires_at {
        None => (format!("{plan}: {}", t.subscribed_forever), true),
        Some(at) if at > now => (
            format!(
                "{plan}: {} {}",
                t.subscribed_until,
                i18n::date(at, language)
            ),
            true,
        ),
        Some(at) => (
            format!(
                "{plan}: {} {}",
                t.subscription_ended,
                i18n::date(at, language)
            ),
            false,
        ),
    }
}

/// `GET /account`: profile, subscription, billing, signed-in devices.
pub async fn account_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let mut visit = Visit::of(&state, &req).await;
    let account = match own_account(&state, &visit).await {
        Ok(Some(account)) => account,
        Ok(None) => return visit.redirect("/signin?next=/account"),
        Err(error) => return visit.error(&error),
    };
    let now = now_ts();
    let t = visit.t;
    let current = visit
        .account()
        .map(|a| a.session_id.clone())
        .unwrap_or_default();
    let reading = match visit.account() {
        Some(me) => match crate::app::seats::of_session(&state, me, now).await {
            Ok(seats) => seats.held,
            Err(error) => return visit.error(&error),
        },
        None => Vec::new(),
    };
    let sessions = match state.store.live_sessions(&account.id, now).await {
        Ok(rows) => rows
            .iter()
            .map(|row| {
                let device = row.user_agent.clone().unwrap_or_else(|| "?".into());
                let mut line = format!(
                    "{device} · {} {}",
                    t.signed_in_since,
                    i18n::date(row.created_at, visit.language)
                );
                if row.id == current {
                    line.push_str(&format!(" ({})", t.this_device));
                }
                if reading.iter().any(|seat| seat.session_id == row.id) {
                    line.push_str(&format!(" · {}", t.reading_now));
                }
                line
            })
            .collect(),
        Err(error) => return visit.error(&error.into()),
    };
    let gifts = match state.store.live_gifts(&account.id, now).await {
        Ok(rows) => rows
            .into_iter()
            .map(|(slug, title, until)| (slug, title, i18n::date(until, visit.language)))
            .collect(),
        Err(error) => return visit.error(&error.into()),
    };
    let (subscription, subscribed) = subscription_line(t, &account, visit.language, now);
    let billing_url = billing::billing_portal(&state, &account).ok();
    let page = AccountPage {
        chrome: visit.chrome(t.account),
        email: account.email.clone(),
        display_name: account.display_name.clone(),
        subscription,
        subscribed,
        billing_url,
        sessions,
        gifts,
    };
    match rendered(&page) {
        Ok(html) => visit.page(StatusCode::OK, html),
        Err(error) => visit.error(&error),
    }
}

/// `POST /account/sessions`: signs out everywhere, as `DELETE /v1/me/sessions`.
pub async fn sign_out_everywhere(
    state: web::Data<AppState>,
    req: HttpRequest,
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
    let Some(account) = visit.account().map(|a| a.account_id.clone()) else {
        return visit.redirect("/signin?next=/account");
    };
    if let Err(error) = crate::app::sessions::sign_out_everywhere(&state, &account).await {
        return visit.error(&error.into());
    }
    for cookie in signed_out_cookies() {
        visit.set_cookie(cookie);
    }
    message(
        visit,
        StatusCode::OK,
        t.sign_out_everywhere,
        t.signed_out_everywhere,
    )
}
