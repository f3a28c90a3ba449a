//! Registration, sign-in, token refresh, sign-out and password resets.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::extract::ApiJson;
use super::views::{AccountView, TokenPair};
use crate::auth::client::client_address;
use crate::auth::identity::SESSION_COOKIE;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::store::now_ts;

pub use crate::domain::parse_display_name;
const MAX_USER_AGENT: usize = 256;
pub use crate::app::accounts::{email_conflict, new_password, password_context, ResetLink};
use crate::app::sessions::{self, SignedIn};
pub use crate::app::sessions::{check_current_password, too_many};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    #[schema(max_length = 100)]
    #[serde(default)]
    display_name: Option<String>,
}

#[utoipa::path(post, operation_id = "auth_register", path = "/v1/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, description = "The new reader account", body = AccountView),
        (status = 403, description = "`registration_closed`: self-registration is disabled", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many registrations from this address", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Register a reader account
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<RegisterBody>,
) -> ApiResult<HttpResponse> {
    let address = client_address(&req, &state.settings.trusted_proxies);
    let body = body.into_inner();
    let now = now_ts();
    let created = crate::app::accounts::register(&state, address, now, || {
        let body = body?;
        Ok((body.email, body.display_name, body.password))
    })
    .await?;
    Ok(HttpResponse::Created().json(AccountView::new(&created.row, now)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    password: String,
}

pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect())
}

#[utoipa::path(post, operation_id = "auth_login", path = "/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "Signed in; also sets the `paywall_session` cookie", body = TokenPair),
        (status = 401, description = "`invalid_credentials`: the same answer whatever was wrong", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_suspended`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failures for this email and address, or for this address", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Sign in with email and password
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner()?;
    let signed = sessions::sign_in(
        &state,
        &body.email,
        body.password,
        client_address(&req, &state.settings.trusted_proxies),
        user_agent(&req),
    )
    .await?;
    Ok(signed_in(&state, signed))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

#[utoipa::path(post, operation_id = "auth_refresh", path = "/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, description = "A new token pair; the refresh token sent is used up. Also sets the `paywall_session` cookie to the new access token", body = TokenPair),
        (status = 401, description = "`invalid_token`: unknown, expired or reused refresh token (reuse ends the session)", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Exchange a refresh token for a new token pair
pub async fn refresh(
    state: web::Data<AppState>,
    body: ApiJson<RefreshBody>,
) -> ApiResult<HttpResponse> {
    let presented = body.into_inner()?.refresh_token;
    let signed = sessions::refresh(&state, &presented).await?;
    Ok(signed_in(&state, signed))
}

/// The `paywall_session` cookie: the access token for the reader's pages, HttpOnly so
/// no script reads it, SameSite=Lax so other sites' forms do not carry it, Secure behind
/// https, and living as long as the token.
pub fn session_cookie(state: &AppState, access_token: String) -> Cookie<'static> {
    let secure = state
        .settings
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"));
    Cookie::build(SESSION_COOKIE, access_token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(
            state.keys.access_ttl_secs,
        ))
        .finish()
}

/// 200 with the token pair, and the same access token in the session cookie.
fn signed_in(state: &AppState, signed: SignedIn) -> HttpResponse {
    let pair = TokenPair {
        access_token: signed.access_token,
        refresh_token: signed.refresh_token,
        token_type: "Bearer",
        expires_in: state.keys.access_ttl_secs,
        account: AccountView::new(&signed.account, signed.now),
    };
    HttpResponse::Ok()
        .cookie(session_cookie(state, pair.access_token.clone()))
        .json(pair)
}

/// An expired `paywall_session` cookie, so a browser forgets the token too.
pub fn removed_session_cookie() -> Cookie<'static> {
    let mut expired = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    expired.make_removal();
    expired
}

#[utoipa::path(post, operation_id = "auth_logout", path = "/v1/auth/logout", tag = "auth", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 204, description = "This session's tokens stop working; the `paywall_session` cookie is expired")))]
/// Sign out this session
pub async fn logout(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<HttpResponse> {
    sessions::sign_out(&state, &caller.0.session_id).await?;
    Ok(HttpResponse::NoContent()
        .cookie(removed_session_cookie())
        .finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequestBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
}

#[utoipa::path(post, operation_id = "auth_request_password_reset", path = "/v1/auth/password-reset/request", tag = "auth", request_body = ResetRequestBody,
    responses((status = 202, description = "Accepted whether or not the account exists; a reset link is mailed when mail is configured"),
        (status = 429, description = "`rate_limited`: too many requests from this address", body = crate::error::Problem, content_type = "application/problem+json")))]
/// 202 whatever the email: whether an account exists is never told. The token and the
/// mail are made after the answer, so the answer takes as long either way.
pub async fn request_password_reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<ResetRequestBody>,
) -> ApiResult<HttpResponse> {
    let address = client_address(&req, &state.settings.trusted_proxies);
    crate::app::resets::request(&state, address, || Ok(body.into_inner()?.email))?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    token: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

#[utoipa::path(post, operation_id = "auth_reset_password", path = "/v1/auth/password-reset", tag = "auth", request_body = ResetBody,
    responses((status = 204, description = "Password replaced; every session of the account is revoked"),
        (status = 401, description = "`invalid_token`: unknown, used or expired reset token", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Sets a new password with a reset token: single use, within the hour; every session
/// of the account ends.
pub async fn reset_password(
    state: web::Data<AppState>,
    body: ApiJson<ResetBody>,
) -> ApiResult<HttpResponse> {
    let ResetBody {
        token,
        new_password: raw,
    } = body.into_inner()?;
    crate::app::resets::reset(&state, &token, raw).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub use crate::app::resets::{rename_field, replacement_password};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(parse_display_name(None).unwrap(), None);
        assert_eq!(parse_display_name(Some("   ")).unwrap(), None);
        assert_eq!(
            parse_display_name(Some("  Zoé  ")).unwrap().as_deref(),
            Some("Zoé")
        );
        assert!(parse_display_name(Some(&"é".repeat(101))).is_err());
        assert!(parse_display_name(Some("a\u{0}b")).is_err());
    }

    #[test]
    fn password_context_splits_the_address() {
        assert_eq!(
            password_context("ada.lovelace+news@example.org", Some("Ada L")).join(" "),
            "ada lovelace news example org Ada L"
        );
    }

    #[test]
    fn reset_links_carry_the_token_and_an_hour() {
        let link = ResetLink::new("https://news.example", false, 1_000);
        assert_eq!(
            link.url,
            format!("https://news.example/reset-password?token={}", link.token)
        );
        assert_eq!(link.expires_at, 4_600);
        assert_eq!(
            crate::auth::tokens::opaque_token_digest(&link.token),
            link.digest
        );
    }
}
