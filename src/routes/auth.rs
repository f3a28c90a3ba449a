//! Registration, sign-in, token refresh and sign-out.

use actix_web::cookie::Cookie;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::extract::ApiJson;
use super::views::{AccountView, TokenPair};
use crate::auth::identity::SESSION_COOKIE;
use crate::auth::{tokens, Authenticated};
use crate::domain::{AccountStatus, Email, Password, Role};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::startup::AppState;
use crate::store::sessions::NewSession;
use crate::store::{now_ts, AccountRow, NewAccount, RefreshOutcome, StoreError};

const MAX_DISPLAY_NAME: usize = 100;
const MAX_USER_AGENT: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// Trimmed; blank means none. At most 100 characters, no control characters.
pub fn parse_display_name(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(format!("must be at most {MAX_DISPLAY_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(Some(name.to_string()))
}

pub async fn register(
    state: web::Data<AppState>,
    body: ApiJson<RegisterBody>,
) -> ApiResult<HttpResponse> {
    if !state.settings.registration_open {
        return Err(ApiError::RegistrationClosed);
    }
    let body = body.0;
    let mut errors = Vec::new();
    let email = Email::parse(&body.email)
        .map_err(|m| errors.push(FieldError::new("email", m)))
        .ok();
    let display_name = parse_display_name(body.display_name.as_deref())
        .map_err(|m| errors.push(FieldError::new("display_name", m)))
        .ok()
        .flatten();
    let mut context: Vec<&str> = Vec::new();
    if let Some(email) = &email {
        context.extend(email.as_str().split(['@', '.']));
    }
    if let Some(name) = &display_name {
        context.extend(name.split_whitespace());
    }
    let password = Password::parse_new(&body.password, &context)
        .map_err(|m| errors.push(FieldError::new("password", m)))
        .ok();
    let (Some(email), Some(password), true) = (email, password, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    // Checked before hashing so a taken address costs no Argon2 work; the unique key
    // still decides a race between two registrations.
    if state
        .store
        .account_by_email(email.as_str())
        .await?
        .is_some()
    {
        return Err(ApiError::EmailTaken);
    }
    let hash = state.hasher.hash(password).await?;
    let now = now_ts();
    let row = state
        .store
        .insert_account(&NewAccount {
            email: email.as_str(),
            display_name: display_name.as_deref(),
            password_hash: Some(&hash),
            role: Role::Reader.as_str(),
            now,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::EmailTaken,
            other => other.into(),
        })?;
    Ok(HttpResponse::Created().json(AccountView::new(&row, now)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
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
    let (refresh_token, refresh_hash) = tokens::new_refresh_token();
    let user_agent = user_agent(req);
    let session_id = state
        .store
        .create_session(&NewSession {
            account_id: &account.id,
            user_agent: user_agent.as_deref(),
            refresh_hash: &refresh_hash,
            now,
            expires_at: now + state.settings.refresh_token_ttl_secs,
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

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    // Whatever is wrong (address, account, password), the same work is done and the
    // same answer given, so the answer does not tell which accounts exist.
    let account = match Email::parse(&body.email) {
        Ok(email) => state.store.account_by_email(email.as_str()).await?,
        Err(_) => None,
    };
    let password = Password::parse_given(&body.password).ok();
    let verified = match password {
        Some(password) => {
            let stored = account.as_ref().and_then(|a| a.password_hash.clone());
            state.hasher.verify(password, stored).await?
        }
        None => false,
    };
    let account = match (verified, account) {
        (true, Some(account)) => account,
        _ => return Err(ApiError::InvalidCredentials),
    };
    if AccountStatus::parse(&account.status) != Some(AccountStatus::Active) {
        return Err(ApiError::AccountSuspended);
    }
    let pair = start_session(&state, &account, &req).await?;
    Ok(HttpResponse::Ok().json(pair))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(
    state: web::Data<AppState>,
    body: ApiJson<RefreshBody>,
) -> ApiResult<HttpResponse> {
    let presented = body.0.refresh_token;
    if presented.is_empty() || presented.len() > 512 {
        return Err(ApiError::InvalidToken("the refresh token is not valid"));
    }
    let now = now_ts();
    let (next_token, next_hash) = tokens::new_refresh_token();
    let outcome = state
        .store
        .rotate_refresh_token(&tokens::refresh_token_digest(&presented), &next_hash, now)
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
            Ok(HttpResponse::Ok().json(pair))
        }
        RefreshOutcome::Reused => Err(ApiError::InvalidToken(
            "this refresh token was already used; its session has been ended",
        )),
        RefreshOutcome::Invalid => Err(ApiError::InvalidToken(
            "the refresh token is not valid or has expired",
        )),
    }
}

pub async fn logout(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<HttpResponse> {
    state
        .store
        .revoke_session(&caller.0.session_id, now_ts())
        .await?;
    let mut expired = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .finish();
    expired.make_removal();
    Ok(HttpResponse::NoContent().cookie(expired).finish())
}

#[cfg(test)]
mod tests {
    use super::parse_display_name;

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
}
