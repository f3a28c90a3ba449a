//! The reader's own account: view, rename, change password, sessions, erase.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::{check_current_password, removed_session_cookie, replacement_password};
use super::extract::{nullable, ApiJson};
use super::views::{AccountView, SessionView};
use crate::auth::{AuthAccount, Authenticated};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::{now_ts, AccountRow};

pub(super) async fn own_account(state: &AppState, caller: &AuthAccount) -> ApiResult<AccountRow> {
    state
        .store
        .account_by_id(&caller.account_id)
        .await?
        .ok_or(ApiError::InvalidToken(
            "the account of this access token no longer exists",
        ))
}

#[utoipa::path(get, operation_id = "me_get_me", path = "/v1/me", tag = "me", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The caller's account", body = AccountView)))]
/// The signed-in account
pub async fn get_me(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<HttpResponse> {
    let account = own_account(&state, &caller.0).await?;
    Ok(HttpResponse::Ok().json(AccountView::new(&account, now_ts())))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMeBody {
    #[schema(max_length = 100)]
    #[serde(default, deserialize_with = "nullable")]
    display_name: Option<Option<String>>,
}

#[utoipa::path(patch, operation_id = "me_patch_me", path = "/v1/me", tag = "me", security(("bearer" = []), ("session_cookie" = [])), request_body = PatchMeBody,
    responses((status = 200, description = "The updated account", body = AccountView)))]
/// Change the display name
pub async fn patch_me(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<PatchMeBody>,
) -> ApiResult<HttpResponse> {
    let now = now_ts();
    let account = match body.into_inner()?.display_name {
        None => own_account(&state, &caller.0).await?,
        Some(raw) => {
            let name = super::auth::parse_display_name(raw.as_deref())
                .map_err(|m| ApiError::validation("display_name", m))?;
            state
                .store
                .set_display_name(&caller.0.account_id, name.as_deref(), now)
                .await
                .map_err(gone)?
        }
    };
    Ok(HttpResponse::Ok().json(AccountView::new(&account, now)))
}

fn gone(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound => {
            ApiError::InvalidToken("the account of this access token no longer exists")
        }
        other => other.into(),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

#[utoipa::path(post, operation_id = "me_change_password", path = "/v1/me/password", tag = "me", security(("bearer" = []), ("session_cookie" = [])), request_body = ChangePasswordBody,
    responses((status = 204, description = "Changed; every other session is revoked"),
        (status = 401, description = "`invalid_credentials`: the current password is not correct", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong current passwords for this account (see `Retry-After`), or the password hashing queue is full", body = crate::error::Problem, content_type = "application/problem+json")))]
/// A wrong current password is `invalid_credentials`, as at sign-in.
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<ChangePasswordBody>,
) -> ApiResult<HttpResponse> {
    let ChangePasswordBody {
        current_password,
        new_password: raw,
    } = body.into_inner()?;
    let account = own_account(&state, &caller.0).await?;
    check_current_password(&state, &account, &current_password).await?;
    let password = replacement_password(&account, raw).await?;
    let hash = state.hasher.hash(password).await?;
    state
        .store
        .set_password_hash(
            &account.id,
            &hash,
            Some(Some(&caller.0.session_id)),
            now_ts(),
        )
        .await
        .map_err(gone)?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMeBody {
    password: String,
}

#[utoipa::path(delete, operation_id = "me_delete_me", path = "/v1/me", tag = "me", security(("bearer" = []), ("session_cookie" = [])), request_body = DeleteMeBody,
    responses((status = 204, description = "The account and its sessions are gone"),
        (status = 401, description = "`invalid_credentials`: the password is not correct", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last_admin`: the last active admin cannot delete itself", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong passwords for this account (see `Retry-After`)", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Erases the account and its sessions. The last active admin cannot erase itself.
pub async fn delete_me(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<DeleteMeBody>,
) -> ApiResult<HttpResponse> {
    let account = own_account(&state, &caller.0).await?;
    check_current_password(&state, &account, &body.into_inner()?.password).await?;
    state
        .store
        .delete_account(&account.id, None, now_ts())
        .await
        .map_err(gone)?;
    Ok(HttpResponse::NoContent()
        .cookie(removed_session_cookie())
        .finish())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionView>,
}

#[utoipa::path(get, operation_id = "me_list_sessions", path = "/v1/me/sessions", tag = "me", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The account's live sessions", body = SessionList)))]
/// The account's live sessions
pub async fn list_sessions(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> ApiResult<HttpResponse> {
    let now = now_ts();
    let rows = state.store.live_sessions(&caller.0.account_id, now).await?;
    let seats = crate::app::seats::of_session(&state, &caller.0, now).await?;
    let items = rows
        .into_iter()
        .map(|row| SessionView {
            current: row.id == caller.0.session_id,
            reading: seats.held.iter().any(|seat| seat.session_id == row.id),
            id: row.id,
            created_at: super::views::rfc3339(row.created_at),
            last_seen_at: super::views::rfc3339(row.last_seen_at),
            user_agent: row.user_agent,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { items }))
}

#[utoipa::path(post, operation_id = "me_take_seat", path = "/v1/me/seat", tag = "me", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 204, description = "This session holds a reading seat: a free one, or the one held longest by another session, whose next read of gated text is the teaser with reason `reading_elsewhere` (both stay signed in). Also 204, changing nothing, for editors, admins and plans of unlimited seats, which read without seats"),
        (status = 403, description = "`forbidden`: the account has no running subscription, so no seat to take", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: more than ten in a minute for this account (see `Retry-After`)", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Continue reading here
///
/// Takes a reading seat for this session: a free one, else the one held longest by
/// another session of the account. No body is read.
pub async fn take_seat(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> ApiResult<HttpResponse> {
    crate::app::seats::continue_here(&state, &caller.0, now_ts()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, operation_id = "me_delete_sessions", path = "/v1/me/sessions", tag = "me", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 204, description = "Signed out everywhere, this session included")))]
/// Signs out everywhere, this session included.
pub async fn delete_sessions(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> ApiResult<HttpResponse> {
    crate::app::sessions::sign_out_everywhere(&state, &caller.0.account_id)
        .await
        .map_err(gone)?;
    Ok(HttpResponse::NoContent()
        .cookie(removed_session_cookie())
        .finish())
}
