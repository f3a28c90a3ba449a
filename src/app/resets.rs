//! Password resets: asking for a link by mail, and setting a new password with one.
//! The JSON routes and the reset pages both come here.

use std::net::IpAddr;

use crate::app::accounts::{new_password, password_context, ResetLink, RESET_TTL_SECS};
use crate::app::sessions::too_many;
use crate::auth::tokens;
use crate::domain::{AccountStatus, Email, Password};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;
use crate::store::{now_ts, AccountRow};

pub const INVALID_RESET: ApiError =
    ApiError::InvalidToken("this reset link is not valid, was already used or has expired");

/// A reader asks for a reset link: throttled per address (429) before the request's
/// email (`email` gives it as sent) is looked at, the email checked (422), then the
/// link made and mailed after the answer, whether or not an account has this email,
/// so the answer tells nothing and takes as long either way.
pub fn request(
    state: &actix_web::web::Data<AppState>,
    address: IpAddr,
    email: impl FnOnce() -> ApiResult<String>,
) -> ApiResult<()> {
    state.throttle.signup_or_reset(address).map_err(too_many)?;
    let email = Email::parse(&email()?).map_err(|m| ApiError::validation("email", m))?;
    if state.mailer.is_some() && state.throttle.reset_mail_allowed(email.as_str()) {
        let state = state.clone();
        actix_web::rt::spawn(async move {
            if let Err(error) = send_reset_mail(&state, &email).await {
                tracing::warn!(%error, "could not send a password reset mail");
            }
        });
    }
    Ok(())
}

/// Where reset links point: the site's reset page when the site is on, else the
/// publisher's page at `/reset-password?token=`.
pub fn link(state: &AppState, now: i64) -> ResetLink {
    ResetLink::new(&state.public_base, state.settings.site, now)
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
    let Some(account) = account.filter(|a| a.status == AccountStatus::Active) else {
        return Ok(());
    };
    let now = now_ts();
    let link = link(state, now);
    state
        .store
        .create_password_reset(&account.id, &link.digest, link.expires_at, None, now)
        .await
        .map_err(|e| e.to_string())?;
    mailer
        .send_password_reset(&account.email, &link.url, RESET_TTL_SECS / 60)
        .await
}

/// The account a reset token opens, if it is live (for the reset page, before the form).
pub async fn account_of(state: &AppState, token: &str) -> ApiResult<AccountRow> {
    if token.is_empty() || token.len() > 512 {
        return Err(INVALID_RESET);
    }
    state
        .store
        .password_reset_account(&tokens::opaque_token_digest(token), now_ts())
        .await?
        .ok_or(INVALID_RESET)
}

/// Sets a new password with a reset token: single use, within the hour; every session
/// of the account ends. 401 `invalid_token` for a dead token, 422 on `new_password`.
pub async fn reset(state: &AppState, token: &str, raw: String) -> ApiResult<()> {
    let account = account_of(state, token).await?;
    let password = replacement_password(&account, raw).await?;
    let hash = state.hasher.hash(password).await?;
    // Spent atomically: of two requests with one token, only one succeeds.
    state
        .store
        .consume_password_reset(&tokens::opaque_token_digest(token), &hash, now_ts())
        .await?
        .ok_or(INVALID_RESET)?;
    Ok(())
}

/// A new password for `account`, checked against its email and name; errors name
/// `new_password`.
pub async fn replacement_password(account: &AccountRow, raw: String) -> ApiResult<Password> {
    let context = password_context(&account.email, account.display_name.as_deref());
    new_password(raw, context)
        .await
        .map_err(|e| rename_field(e, "new_password"))
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
