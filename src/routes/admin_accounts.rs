//! Account administration: list, create, view, change, delete; subscriptions, sessions
//! and reset links. Every change is written to the audit log in its own transaction.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::{email_conflict, parse_display_name};
use super::extract::{nullable, page_cursor, page_limit, query_choice, query_value, ApiJson};
use super::views::{
    parse_rfc3339, rfc3339, AccountView, AdminAccountView, CreatedAccountView, Page, ResetLinkView,
};
use crate::app::accounts::NewAccountRequest;
use crate::auth::{AuthAccount, Authenticated};
use crate::domain::{AccountStatus, Email, Role};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;
use crate::store::{
    now_ts, AccountChanges, AccountFilter, AccountRow, AuditEntry, StoreError, Subscription,
};

const MAX_PLAN: usize = 64;

fn require_admin(caller: &AuthAccount) -> ApiResult<()> {
    caller.require(&[Role::Admin])
}

/// An admin acting on the account the path names: 401 without a token, 403 for a
/// caller who is not an admin, then 404 for a path id that is no account id.
pub struct AdminOnAccount {
    pub admin: AuthAccount,
    /// The account id, as the store spells it.
    pub id: String,
}

impl actix_web::FromRequest for AdminOnAccount {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let caller = Authenticated::from_request(req, payload);
        let raw = req.match_info().get("id").unwrap_or_default().to_string();
        Box::pin(async move {
            let admin = caller.await?.0;
            require_admin(&admin)?;
            Ok(AdminOnAccount {
                id: account_id(&raw)?,
                admin,
            })
        })
    }
}

/// Account ids are UUIDs; anything else names no account.
fn account_id(raw: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| ApiError::NotFound("no account has this id"))
}

fn not_found(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound => ApiError::NotFound("no account has this id"),
        other => email_conflict(other),
    }
}

fn audit(caller: &AuthAccount, action: &'static str, target: &str) -> AuditEntry {
    AuditEntry::new(Some(&caller.account_id), action, "account", Some(target))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    #[schema(min_length = 1, max_length = 64)]
    plan: String,
    /// RFC 3339; null or absent for a subscription without end.
    #[schema(format = DateTime)]
    #[serde(default)]
    expires_at: Option<String>,
}

/// A plan name (1 to 64 characters) and an end (RFC 3339) or none.
fn parse_subscription(
    body: SubscriptionBody,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Subscription> {
    let plan = body.plan.trim().to_string();
    let mut ok = true;
    if plan.is_empty() || plan.chars().count() > MAX_PLAN || plan.chars().any(char::is_control) {
        errors.push(FieldError::new(
            format!("{prefix}plan"),
            format!("must be 1 to {MAX_PLAN} characters"),
        ));
        ok = false;
    }
    let expires_at = match body.expires_at.as_deref() {
        None => None,
        Some(text) => {
            let parsed = parse_rfc3339(text);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    format!("{prefix}expires_at"),
                    "must be an RFC 3339 date and time, such as 2027-01-01T00:00:00Z, or null",
                ));
                ok = false;
            }
            parsed
        }
    };
    ok.then_some(Subscription { plan, expires_at })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountListQuery {
    /// Part of the email or display name (at most 254 characters).
    q: Option<String>,
    #[param(value_type = Option<Role>)]
    role: Option<String>,
    #[param(value_type = Option<AccountStatus>)]
    status: Option<String>,
    /// Whether the subscription is active now.
    #[param(value_type = Option<bool>)]
    subscribed: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn bad_query(name: &str, expected: &str) -> ApiError {
    ApiError::BadRequest(format!("{name} must be {expected}"))
}

#[utoipa::path(get, operation_id = "admin_accounts_list", path = "/v1/admin/accounts", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["accounts"]), ("api_key" = ["subscriptions"])), params(AccountListQuery),
    responses((status = 200, description = "A page of accounts, newest first", body = Page<AccountView>)))]
/// Search and list accounts
pub async fn list(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<AccountListQuery>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let role = query_choice(&query.role)
        .map(|r| Role::parse(r).ok_or_else(|| bad_query("role", "reader, editor or admin")))
        .transpose()?;
    let status = query_choice(&query.status)
        .map(|s| AccountStatus::parse(s).ok_or_else(|| bad_query("status", "active or suspended")))
        .transpose()?;
    let subscribed = query_choice(&query.subscribed)
        .map(|s| match s {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad_query("subscribed", "true or false")),
        })
        .transpose()?;
    let q = query_value(&query.q);
    if q.is_some_and(|q| q.chars().count() > 254) {
        return Err(bad_query("q", "at most 254 characters"));
    }
    let filter = AccountFilter {
        q,
        role: role.map(Role::as_str),
        status: status.map(AccountStatus::as_str),
        subscribed,
    };
    let now = now_ts();
    let rows = state
        .store
        .list_accounts(&filter, cursor.as_ref(), limit, now)
        .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |r| (r.created_at, &r.id),
        |r| AccountView::new(r, now),
    );
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 128)]
    #[serde(default)]
    password: Option<String>,
    #[schema(max_length = 100)]
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    subscription: Option<SubscriptionBody>,
}

#[utoipa::path(post, operation_id = "admin_accounts_create", path = "/v1/admin/accounts", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["accounts"])), request_body = CreateAccountBody,
    responses((status = 201, description = "The account; without a password, also a one-time reset link", body = CreatedAccountView),
        (status = 409, description = "`email_taken`", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Creates an account. Without a password, the answer carries a one-time reset link
/// for the reader to choose one: an admin never picks a reader's password.
pub async fn create(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<CreateAccountBody>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let body = body.into_inner()?;
    let mut errors = Vec::new();
    let subscription = body
        .subscription
        .and_then(|s| parse_subscription(s, "subscription.", &mut errors));
    let now = now_ts();
    let created = crate::app::accounts::create(
        &state.store,
        &state.hasher,
        NewAccountRequest {
            email: &body.email,
            display_name: body.display_name.as_deref(),
            password: body.password,
            role: body.role.unwrap_or(Role::Reader),
            subscription,
            reset_link_base: Some((&state.public_base, state.settings.site)),
            audit: Some(AuditEntry::new(
                Some(&caller.0.account_id),
                "account.create",
                "account",
                None,
            )),
            now,
        },
        errors,
    )
    .await?;
    let (row, link) = (created.row, created.reset_link);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/admin/accounts/{}", row.id)))
        .json(CreatedAccountView {
            account: AccountView::new(&row, now),
            password_reset: link.map(|l| ResetLinkView {
                token: l.token,
                url: l.url,
                expires_at: rfc3339(l.expires_at),
            }),
        }))
}

async fn admin_view(state: &AppState, row: &AccountRow) -> ApiResult<AdminAccountView> {
    let now = now_ts();
    Ok(AdminAccountView {
        account: AccountView::new(row, now),
        updated_at: rfc3339(row.updated_at),
        last_login_at: row.last_login_at.map(rfc3339),
        active_sessions: state.store.live_session_count(&row.id, now).await?,
    })
}

#[utoipa::path(get, operation_id = "admin_accounts_get", path = "/v1/admin/accounts/{id}", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["accounts"]), ("api_key" = ["subscriptions"])), params(("id" = String, Path, description = "The account id")),
    responses((status = 200, description = "The account with its sign-in activity", body = AdminAccountView)))]
/// One account, with its last sign-in and live sessions
pub async fn get(state: web::Data<AppState>, on: AdminOnAccount) -> ApiResult<HttpResponse> {
    let id = on.id;
    let row = state
        .store
        .account_by_id(&id)
        .await?
        .ok_or(ApiError::NotFound("no account has this id"))?;
    Ok(HttpResponse::Ok().json(admin_view(&state, &row).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAccountBody {
    #[schema(format = Email, max_length = 254)]
    #[serde(default)]
    email: Option<String>,
    #[schema(max_length = 100)]
    #[serde(default, deserialize_with = "nullable")]
    display_name: Option<Option<String>>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    status: Option<AccountStatus>,
}

#[utoipa::path(patch, operation_id = "admin_accounts_patch", path = "/v1/admin/accounts/{id}", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["accounts"])), params(("id" = String, Path, description = "The account id")), request_body = PatchAccountBody,
    responses((status = 200, description = "The updated account", body = AccountView),
        (status = 409, description = "`email_taken`, or `last_admin`: the last active admin cannot be demoted or suspended", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Change an account's email, name, role or status
pub async fn patch(
    state: web::Data<AppState>,
    on: AdminOnAccount,
    body: ApiJson<PatchAccountBody>,
) -> ApiResult<HttpResponse> {
    let AdminOnAccount { admin, id } = on;
    let body = body.into_inner()?;
    let mut errors = Vec::new();
    let email = body
        .email
        .map(|raw| {
            Email::parse(&raw)
                .map_err(|m| errors.push(FieldError::new("email", m)))
                .ok()
        })
        .map(|parsed| parsed.map(|e| e.as_str().to_string()));
    let display_name = body.display_name.map(|raw| {
        parse_display_name(raw.as_deref())
            .map_err(|m| errors.push(FieldError::new("display_name", m)))
            .ok()
            .flatten()
    });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let changes = AccountChanges {
        email: email.flatten(),
        display_name,
        role: body.role,
        status: body.status,
    };
    let row = state
        .store
        .update_account(
            &id,
            &changes,
            &audit(&admin, "account.update", &id),
            now_ts(),
        )
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::Ok().json(admin_view(&state, &row).await?))
}

#[utoipa::path(delete, operation_id = "admin_accounts_delete", path = "/v1/admin/accounts/{id}", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["accounts"])), params(("id" = String, Path, description = "The account id")),
    responses((status = 204, description = "Deleted, with its sessions"),
        (status = 409, description = "`last_admin`: the last active admin cannot be deleted", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Delete an account
pub async fn delete(state: web::Data<AppState>, on: AdminOnAccount) -> ApiResult<HttpResponse> {
    let AdminOnAccount { admin, id } = on;
    state
        .store
        .delete_account(&id, Some(&audit(&admin, "account.delete", &id)), now_ts())
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, operation_id = "admin_accounts_password_reset", path = "/v1/admin/accounts/{id}/password-reset", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["accounts"])), params(("id" = String, Path, description = "The account id")),
    responses((status = 201, description = "A one-time reset link to pass on to the reader", body = ResetLinkView)))]
/// A one-time reset link for the admin to pass on to the reader.
pub async fn password_reset(
    state: web::Data<AppState>,
    on: AdminOnAccount,
) -> ApiResult<HttpResponse> {
    let AdminOnAccount { admin, id } = on;
    let now = now_ts();
    let link = crate::app::resets::link(&state, now);
    let entry = audit(&admin, "account.password_reset", &id)
        .details(json!({"expires_at": rfc3339(link.expires_at)}));
    state
        .store
        .create_password_reset(&id, &link.digest, link.expires_at, Some(&entry), now)
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::Created().json(ResetLinkView {
        token: link.token,
        url: link.url,
        expires_at: rfc3339(link.expires_at),
    }))
}

#[utoipa::path(put, operation_id = "admin_accounts_put_subscription", path = "/v1/admin/accounts/{id}/subscription", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["subscriptions"])), params(("id" = String, Path, description = "The account id")), request_body = SubscriptionBody,
    responses((status = 200, description = "The account with its subscription", body = AccountView)))]
/// Set an account's subscription
pub async fn put_subscription(
    state: web::Data<AppState>,
    on: AdminOnAccount,
    body: ApiJson<SubscriptionBody>,
) -> ApiResult<HttpResponse> {
    let AdminOnAccount { admin, id } = on;
    let mut errors = Vec::new();
    let subscription = parse_subscription(body.into_inner()?, "", &mut errors)
        .ok_or(ApiError::Validation(errors))?;
    let entry = audit(&admin, "subscription.put", &id).details(json!({
        "plan": subscription.plan,
        "expires_at": subscription.expires_at.map(rfc3339),
    }));
    let now = now_ts();
    let row = state
        .store
        .put_subscription(&id, &subscription, Some(&entry), now)
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::Ok().json(AccountView::new(&row, now)))
}

#[utoipa::path(delete, operation_id = "admin_accounts_delete_subscription", path = "/v1/admin/accounts/{id}/subscription", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["subscriptions"])), params(("id" = String, Path, description = "The account id")),
    responses((status = 200, description = "The account, its subscription ended now", body = AccountView)))]
/// Ends the subscription now; it stays on the account as expired.
pub async fn delete_subscription(
    state: web::Data<AppState>,
    on: AdminOnAccount,
) -> ApiResult<HttpResponse> {
    let AdminOnAccount { admin, id } = on;
    let now = now_ts();
    let row = state
        .store
        .end_subscription(&id, &audit(&admin, "subscription.delete", &id), now)
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::Ok().json(AccountView::new(&row, now)))
}

#[utoipa::path(delete, operation_id = "admin_accounts_delete_sessions", path = "/v1/admin/accounts/{id}/sessions", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["accounts"])), params(("id" = String, Path, description = "The account id")),
    responses((status = 204, description = "Every session of the account is revoked")))]
/// Sign an account out everywhere
pub async fn delete_sessions(
    state: web::Data<AppState>,
    on: AdminOnAccount,
) -> ApiResult<HttpResponse> {
    let AdminOnAccount { admin, id } = on;
    state
        .store
        .revoke_account_sessions(&id, Some(&audit(&admin, "sessions.revoke", &id)), now_ts())
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, operation_id = "admin_accounts_seats", path = "/v1/admin/accounts/{id}/seats", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["accounts"])), params(("id" = String, Path, description = "The account id")),
    responses((status = 200, description = "The account's plan's seats and the sessions reading on them now", body = super::views::SeatsView),
        (status = 404, description = "`not_found`: no account has this id", body = crate::error::Problem, content_type = "application/problem+json")))]
/// An account's reading seats
///
/// How many sessions may read at once, and which hold a seat now (signing them out,
/// `DELETE /v1/admin/accounts/{id}/sessions`, frees their seats).
pub async fn seats(state: web::Data<AppState>, on: AdminOnAccount) -> ApiResult<HttpResponse> {
    let seats = crate::app::seats::of_account(&state, &on.id, now_ts()).await?;
    Ok(HttpResponse::Ok().json(super::views::SeatsView::from(seats)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The id of the account that acted.
    actor: Option<String>,
    /// The id of the record acted on.
    target: Option<String>,
    /// An action name, such as `account.update`.
    action: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "admin_accounts_audit_log", path = "/v1/admin/audit", tag = "admin accounts", security(("bearer" = []), ("session_cookie" = []), ("api_key" = ["audit"])), params(AuditQuery),
    responses((status = 200, description = "A page of audit entries, newest first", body = Page<super::views::AuditView>)))]
/// The audit log, newest first
pub async fn audit_log(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let filter = crate::store::AuditFilter {
        actor: query_value(&query.actor),
        target: query_value(&query.target),
        action: query_value(&query.action),
    };
    let rows = state
        .store
        .list_audit(&filter, cursor.as_ref(), limit)
        .await?;
    let page = Page::from_rows(
        rows,
        limit,
        |r| (r.at, &r.id),
        |r| super::views::AuditView::from(r),
    );
    Ok(HttpResponse::Ok().json(page))
}
