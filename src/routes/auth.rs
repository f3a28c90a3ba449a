//! Registration, sign-in, token refresh, sign-out and password resets.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::extract::ApiJson;
use super::views::{AccountView, TokenPair};
use crate::app::accounts::NewAccountRequest;
use crate::auth::client::client_address;
use crate::auth::identity::SESSION_COOKIE;
use crate::auth::password::Verified;
use crate::auth::throttle::{self, Burst};
use crate::auth::{tokens, Authenticated};
use crate::domain::{AccountStatus, Email, Password, Role};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;
use crate::store::sessions::NewSession;
use crate::store::{now_ts, AccountRow, AuditEntry, RefreshOutcome};

pub use crate::domain::parse_display_name;
const MAX_USER_AGENT: usize = 256;
/// Reset links last an hour.
pub use crate::app::accounts::{
    email_conflict, new_password, password_context, ResetLink, RESET_TTL_SECS,
};

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

/// A replacement password for an existing account (change or reset), reported under
/// the request's field `new_password`.
pub async fn replacement_password(account: &AccountRow, raw: String) -> ApiResult<Password> {
    let context = password_context(&account.email, account.display_name.as_deref());
    new_password(raw, context)
        .await
        .map_err(|e| rename_field(e, "new_password"))
}

fn too_many(retry: crate::auth::throttle::RetryAfter) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: retry.secs(),
    }
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
    if !state.settings.registration_open {
        return Err(ApiError::RegistrationClosed);
    }
    state
        .throttle
        .signup_or_reset(client_address(&req, &state.settings.trusted_proxies))
        .map_err(too_many)?;
    let body = body.into_inner()?;
    let now = now_ts();
    let created = crate::app::accounts::create(
        &state.store,
        &state.hasher,
        NewAccountRequest {
            email: &body.email,
            display_name: body.display_name.as_deref(),
            password: Some(body.password),
            role: Role::Reader,
            subscription: None,
            reset_link_base: None,
            audit: None,
            now,
        },
        Vec::new(),
    )
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

fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect())
}

/// Opens a session for `account` and answers with its first token pair.
async fn start_session(
    state: &AppState,
    account: &AccountRow,
    req: &HttpRequest,
) -> ApiResult<TokenPair> {
    let now = now_ts();
    let (refresh_token, refresh_hash) = tokens::new_opaque_token();
    let user_agent = user_agent(req);
    let session_id = state
        .store
        .create_session(&NewSession {
            account_id: &account.id,
            user_agent: user_agent.as_deref(),
            refresh_hash: &refresh_hash,
            now,
            expires_at: now + state.settings.refresh_token_ttl_secs,
            idle_secs: state.settings.session_idle_secs,
        })
        .await?;
    token_pair(state, account, &session_id, refresh_token, now)
}

fn token_pair(
    state: &AppState,
    account: &AccountRow,
    session_id: &str,
    refresh_token: String,
    now: i64,
) -> ApiResult<TokenPair> {
    let role =
        Role::parse(&account.role).ok_or_else(|| ApiError::internal("unknown role in database"))?;
    let access_token = state
        .keys
        .issue(&account.id, session_id, role, now)
        .map_err(ApiError::internal)?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.keys.access_ttl_secs,
        account: AccountView::new(account, now),
    })
}

/// Checks a signed-in account's current password, the same way sign-in does, within
/// the account's allowance of attempts: 401 `invalid_credentials` when wrong, 429 once
/// the allowance is spent (before any hashing, so a flood never fills the queue).
pub async fn check_current_password(
    state: &AppState,
    account: &AccountRow,
    given: &str,
) -> ApiResult<()> {
    let key = throttle::password_check_key(&account.id);
    let now = now_ts();
    let counted = state
        .store
        .count_failure(&[&key], state.throttle.window_secs(), now)
        .await?;
    if let Some(counted) = counted.first() {
        state
            .throttle
            .password_check(counted, now)
            .map_err(too_many)?;
    }
    let verified = match Password::parse_given(given) {
        Ok(password) => {
            state
                .hasher
                .verify(password, account.password_hash.clone())
                .await?
        }
        Err(_) => Verified::No,
    };
    match verified {
        Verified::Yes { .. } => {
            state.store.clear_failures(&key).await?;
            Ok(())
        }
        Verified::No => Err(ApiError::InvalidCredentials),
    }
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
    let address = client_address(&req, &state.settings.trusted_proxies);
    let email = Email::parse(&body.email).ok();
    let throttle_key = email.as_ref().map_or_else(
        || body.email.trim().to_lowercase().chars().take(254).collect(),
        |e| e.as_str().to_string(),
    );
    let keys = throttle::login_keys(&throttle_key, address);
    let keys = [keys[0].as_str(), keys[1].as_str()];
    let window = state.throttle.window_secs();
    let counts = state.store.failure_counts(&keys, window, now_ts()).await?;
    if let Some(retry) = state.throttle.login_blocked(&counts, now_ts()) {
        crate::metrics::login(crate::metrics::Login::Throttled);
        return Err(too_many(retry));
    }
    // Whatever is wrong (address, account, password), the same work is done and the
    // same answer given, so the answer does not tell which accounts exist.
    let account = match &email {
        Some(email) => state.store.account_by_email(email.as_str()).await?,
        None => None,
    };
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let verified = match Password::parse_given(&body.password) {
        Ok(password) => state.hasher.verify(password, stored.clone()).await?,
        Err(_) => Verified::No,
    };
    let (rehash, account) = match (verified, account) {
        (Verified::Yes { rehash }, Some(account)) => (rehash, account),
        (_, account) => {
            let counted = state.store.count_failure(&keys, window, now_ts()).await?;
            let burst = state.throttle.login_burst(&counted);
            if burst != Burst::None {
                record_burst(&state, burst, &throttle_key, account.as_ref(), address).await?;
            }
            crate::metrics::login(crate::metrics::Login::InvalidCredentials);
            return Err(ApiError::InvalidCredentials);
        }
    };
    // A success clears the failures of that email from that address only, so an
    // attacker elsewhere cannot lock the owner out and the owner cannot unlock an
    // attacker. Without earlier failures there is nothing to clear and nothing written.
    if counts[0].is_some() {
        state.store.clear_failures(keys[0]).await?;
    }
    if AccountStatus::parse(&account.status) != Some(AccountStatus::Active) {
        crate::metrics::login(crate::metrics::Login::Suspended);
        return Err(ApiError::AccountSuspended);
    }
    crate::metrics::login(crate::metrics::Login::Success);
    if rehash {
        rehash_in_background(&state, &account, body.password, stored);
    }
    let pair = start_session(&state, &account, &req).await?;
    Ok(signed_in(&state, pair))
}

/// The first failure over a limit is written to the audit log; the ones after it in
/// the same window are the same burst.
async fn record_burst(
    state: &AppState,
    burst: Burst,
    email: &str,
    account: Option<&AccountRow>,
    address: std::net::IpAddr,
) -> ApiResult<()> {
    let (scope, limit) = match burst {
        Burst::PerAddress => (
            "client_address",
            state.settings.login_max_failures_per_address,
        ),
        _ => (
            "email_and_client_address",
            state.settings.login_max_failures,
        ),
    };
    let mut details = serde_json::json!({
        "scope": scope,
        "client_address": address.to_string(),
        "failures": limit,
        "window_secs": state.settings.login_window_secs,
    });
    if burst == Burst::PerEmailAndAddress {
        details["email"] = serde_json::Value::String(email.to_string());
    }
    let entry = AuditEntry::new(
        None,
        "login.throttled",
        "account",
        account.map(|a| a.id.as_str()),
    )
    .details(details);
    state.store.record_audit(&entry, now_ts()).await?;
    Ok(())
}

/// Re-makes a weaker (or imported bcrypt) hash at the configured cost after a
/// successful sign-in, without making the reader wait for it.
fn rehash_in_background(
    state: &web::Data<AppState>,
    account: &AccountRow,
    password: String,
    old: Option<String>,
) {
    let (Some(old), Ok(password)) = (old, Password::parse_given(&password)) else {
        return;
    };
    let state = state.clone();
    let account_id = account.id.clone();
    actix_web::rt::spawn(async move {
        let outcome = match state.hasher.hash(password).await {
            Ok(new) => state
                .store
                .upgrade_password_hash(&account_id, &old, &new)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not re-hash a password at the configured cost");
        }
    });
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
    if presented.is_empty() || presented.len() > 512 {
        return Err(ApiError::InvalidToken("the refresh token is not valid"));
    }
    let now = now_ts();
    let (next_token, next_hash) = tokens::new_opaque_token();
    let outcome = state
        .store
        .rotate_refresh_token(
            &tokens::opaque_token_digest(&presented),
            &next_hash,
            state.settings.session_idle_secs,
            now,
        )
        .await?;
    match outcome {
        RefreshOutcome::Rotated {
            session_id,
            account,
        } => {
            if AccountStatus::parse(&account.status) != Some(AccountStatus::Active) {
                state.store.revoke_session(&session_id, now).await?;
                return Err(ApiError::InvalidToken(
                    "the account of this refresh token is suspended",
                ));
            }
            let pair = token_pair(&state, &account, &session_id, next_token, now)?;
            Ok(signed_in(&state, pair))
        }
        RefreshOutcome::Reused => Err(ApiError::InvalidToken(
            "this refresh token was already used; its session has been ended",
        )),
        RefreshOutcome::Invalid => Err(ApiError::InvalidToken(
            "the refresh token is not valid or has expired",
        )),
    }
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
fn signed_in(state: &AppState, pair: TokenPair) -> HttpResponse {
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
    state
        .store
        .revoke_session(&caller.0.session_id, now_ts())
        .await?;
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
    state
        .throttle
        .signup_or_reset(client_address(&req, &state.settings.trusted_proxies))
        .map_err(too_many)?;
    let email =
        Email::parse(&body.into_inner()?.email).map_err(|m| ApiError::validation("email", m))?;
    if state.mailer.is_some() && state.throttle.reset_mail_allowed(email.as_str()) {
        let state = state.clone();
        actix_web::rt::spawn(async move {
            if let Err(error) = send_reset_mail(&state, &email).await {
                tracing::warn!(%error, "could not send a password reset mail");
            }
        });
    }
    Ok(HttpResponse::Accepted().finish())
}

async fn send_reset_mail(state: &AppState, email: &Email) -> Result<(), String> {
    let Some(mailer) = &state.mailer else {
        return Ok(());
    };
    let account = state
        .store
        .account_by_email(email.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let Some(account) = account.filter(|a| a.status == AccountStatus::Active.as_str()) else {
        return Ok(());
    };
    let now = now_ts();
    let link = ResetLink::new(&state.public_base, now);
    state
        .store
        .create_password_reset(&account.id, &link.digest, link.expires_at, None, now)
        .await
        .map_err(|e| e.to_string())?;
    mailer
        .send_password_reset(&account.email, &link.url, RESET_TTL_SECS / 60)
        .await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    token: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

const INVALID_RESET: ApiError =
    ApiError::InvalidToken("this reset link is not valid, was already used or has expired");

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
    if token.is_empty() || token.len() > 512 {
        return Err(INVALID_RESET);
    }
    let digest = tokens::opaque_token_digest(&token);
    let now = now_ts();
    let account = state
        .store
        .password_reset_account(&digest, now)
        .await?
        .ok_or(INVALID_RESET)?;
    let password = replacement_password(&account, raw).await?;
    let hash = state.hasher.hash(password).await?;
    // Spent atomically: of two requests with one token, only one succeeds.
    state
        .store
        .consume_password_reset(&digest, &hash, now_ts())
        .await?
        .ok_or(INVALID_RESET)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The same validation error reported under the request's own field name.
pub fn rename_field(error: ApiError, field: &str) -> ApiError {
    match error {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|e| FieldError::new(field, e.message))
                .collect(),
        ),
        other => other,
    }
}

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
        let link = ResetLink::new("https://news.example", 1_000);
        assert_eq!(
            link.url,
            format!("https://news.example/reset-password?token={}", link.token)
        );
        assert_eq!(link.expires_at, 4_600);
        assert_eq!(tokens::opaque_token_digest(&link.token), link.digest);
    }
}
