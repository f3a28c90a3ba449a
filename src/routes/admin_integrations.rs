//! The publisher's systems: API keys and outbound webhook endpoints, for admins signed
//! in (never for API keys: a key cannot make keys or redirect events).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::extract::{nullable, page_cursor, page_limit, ApiJson};
use super::views::{
    ApiKeyView, CreatedApiKeyView, CreatedWebhookView, DeliveryView, Page, WebhookView,
};
use crate::app::{api_keys, webhooks};
use crate::auth::{AuthAccount, Authenticated};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::now_ts;

fn require_admin(caller: &AuthAccount) -> ApiResult<()> {
    caller.require(&[Role::Admin])
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyBody {
    /// What the key is for, such as `CMS` (1 to 100 characters).
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// At least one of `accounts`, `subscriptions`, `articles`, `audit`.
    #[schema(value_type = Vec<crate::auth::Scope>, min_items = 1)]
    scopes: Option<Vec<String>>,
}

#[utoipa::path(post, operation_id = "api_keys_create", path = "/v1/admin/api-keys", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), request_body = CreateApiKeyBody,
    responses((status = 201, description = "The key, shown this once", body = CreatedApiKeyView)))]
/// Make an API key
///
/// The key (`pwk_...`) is in this answer only; Paywall keeps a keyed digest of it. Send
/// it as `Authorization: Bearer <key>`: it opens the admin routes of its scopes and no
/// others, and every change it makes is audited with the key's id as actor.
pub async fn create_api_key(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<CreateApiKeyBody>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let body = body.into_inner()?;
    let made = api_keys::create(
        &state.store,
        &state.key_digests,
        &caller.0.account_id,
        body.name,
        body.scopes,
        now_ts(),
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedApiKeyView {
        key_info: ApiKeyView::from(&made.row),
        key: made.key,
    }))
}

#[utoipa::path(get, operation_id = "api_keys_list", path = "/v1/admin/api-keys", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), params(PageQuery),
    responses((status = 200, description = "A page of keys, newest first, revoked ones included; never the keys themselves", body = Page<ApiKeyView>)))]
/// API keys, with their last use
pub async fn list_api_keys(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let rows = state.store.list_api_keys(cursor.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |r| (r.created_at, &r.id),
        |r| ApiKeyView::from(r),
    )))
}

fn path_id(req: &HttpRequest) -> String {
    req.match_info().get("id").unwrap_or_default().to_string()
}

#[utoipa::path(delete, operation_id = "api_keys_revoke", path = "/v1/admin/api-keys/{id}", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "The key's id (`key_...`)")),
    responses((status = 204, description = "Revoked: its next request, on any instance, is 401 `invalid_token`")))]
/// Revoke an API key
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    api_keys::revoke(&state.store, &caller.0.account_id, &path_id(&req), now_ts()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookBody {
    /// Where deliveries are POSTed: http or https. A host that resolves to a loopback
    /// or private address is refused unless PAYWALL_WEBHOOK_ALLOW_PRIVATE is true.
    #[schema(max_length = 2048)]
    url: Option<String>,
    /// At least one of `account.created`, `account.updated`, `account.deleted`,
    /// `subscription.updated`, `article.published`, `article.updated`,
    /// `article.unpublished`.
    #[schema(min_items = 1)]
    events: Option<Vec<String>>,
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Default true.
    active: Option<bool>,
}

#[utoipa::path(post, operation_id = "webhooks_create", path = "/v1/admin/webhooks", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), request_body = CreateWebhookBody,
    responses((status = 201, description = "The endpoint, with its signing secret shown this once", body = CreatedWebhookView)))]
/// Add a webhook endpoint
///
/// Each event is POSTed as `{"type", "timestamp", "data"}` with the Standard Webhooks
/// headers `webhook-id` (the same on every retry), `webhook-timestamp` and
/// `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` under the secret.
/// An event is written in the same transaction as the change it tells of, delivered at
/// least once, retried with exponential backoff and jitter for 24 hours (any answer but
/// a 2xx, or none within PAYWALL_WEBHOOK_TIMEOUT_SECS, is a failure), and events about
/// one account or one article go out in the order they happened. Account events carry
/// the account as the admin API shows it (`subscription.updated` too); article events
/// carry the article's metadata (id, slug, title, section, access, status,
/// published_at, external_id, canonical_url), never its text.
pub async fn create_webhook(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<CreateWebhookBody>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let body = body.into_inner()?;
    let row = webhooks::create(
        &state.store,
        &state.settings,
        &caller.0.account_id,
        webhooks::EndpointInput {
            url: body.url,
            events: body.events,
            description: body.description.map(Some),
            active: body.active,
        },
        now_ts(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/admin/webhooks/{}", row.id)))
        .json(CreatedWebhookView {
            webhook: WebhookView::from(&row),
            secret: row.secret.clone(),
        }))
}

#[utoipa::path(get, operation_id = "webhooks_list", path = "/v1/admin/webhooks", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), params(PageQuery),
    responses((status = 200, description = "A page of endpoints, newest first, without their secrets", body = Page<WebhookView>)))]
/// Webhook endpoints
pub async fn list_webhooks(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let rows = state.store.list_webhooks(cursor.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |r| (r.created_at, &r.id),
        |r| WebhookView::from(r),
    )))
}

async fn find_webhook(state: &AppState, req: &HttpRequest) -> ApiResult<crate::store::WebhookRow> {
    state
        .store
        .webhook(&path_id(req))
        .await?
        .ok_or(ApiError::NotFound("no webhook endpoint has this id"))
}

#[utoipa::path(get, operation_id = "webhooks_get", path = "/v1/admin/webhooks/{id}", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "The endpoint's id (`wh_...`)")),
    responses((status = 200, description = "The endpoint, without its secret", body = WebhookView)))]
/// One webhook endpoint
pub async fn get_webhook(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let row = find_webhook(&state, &req).await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&row)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhookBody {
    #[schema(max_length = 2048)]
    url: Option<String>,
    #[schema(min_items = 1)]
    events: Option<Vec<String>>,
    /// Null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 500)]
    description: Option<Option<String>>,
    /// False pauses deliveries (they wait, in order, until it is true again).
    active: Option<bool>,
}

#[utoipa::path(patch, operation_id = "webhooks_patch", path = "/v1/admin/webhooks/{id}", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "The endpoint's id (`wh_...`)")), request_body = PatchWebhookBody,
    responses((status = 200, description = "The endpoint as changed", body = WebhookView)))]
/// Change a webhook endpoint
pub async fn patch_webhook(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    body: ApiJson<PatchWebhookBody>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let body = body.into_inner()?;
    let row = webhooks::update(
        &state.store,
        &state.settings,
        &caller.0.account_id,
        &path_id(&req),
        webhooks::EndpointInput {
            url: body.url,
            events: body.events,
            description: body.description,
            active: body.active,
        },
        now_ts(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&row)))
}

#[utoipa::path(delete, operation_id = "webhooks_delete", path = "/v1/admin/webhooks/{id}", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "The endpoint's id (`wh_...`)")),
    responses((status = 204, description = "Deleted, with its pending deliveries and its delivery log")))]
/// Delete a webhook endpoint
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    webhooks::delete(&state.store, &caller.0.account_id, &path_id(&req), now_ts()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, operation_id = "webhooks_deliveries", path = "/v1/admin/webhooks/{id}/deliveries", tag = "integrations", security(("bearer" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "The endpoint's id (`wh_...`)"), PageQuery),
    responses((status = 200, description = "A page of the endpoint's deliveries, newest first (kept 30 days after they finish)", body = Page<DeliveryView>)))]
/// The delivery log of a webhook endpoint
pub async fn list_deliveries(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = page_cursor(query.cursor.as_deref())?;
    let webhook = find_webhook(&state, &req).await?;
    let rows = state
        .store
        .list_deliveries(&webhook.id, cursor.as_ref(), limit)
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |r| (r.seq, &r.id),
        |r| DeliveryView::from(r),
    )))
}
