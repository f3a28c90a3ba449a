//! Plans, checkout, the billing portal and Stripe's webhook.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::extract::{nullable, ApiJson, RawBody};
use super::me::own_account;
use super::views::{Items, PlanView, PublicPlanView};
use crate::app::billing::{self, PlanInput};
use crate::auth::{AuthAccount, Authenticated, Caller};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::now_ts;

fn require_admin(caller: &AuthAccount) -> ApiResult<()> {
    caller.require(&[Role::Admin])
}

/// A plan id from the path; one that is no slug names no plan.
fn plan_id(req: &HttpRequest) -> ApiResult<String> {
    let raw = req.match_info().get("id").unwrap_or_default();
    billing::check_plan_id(raw).map_err(|_| ApiError::NotFound("there is no plan with this id"))
}

#[utoipa::path(get, operation_id = "billing_public_plans", path = "/v1/plans", tag = "billing",
    responses((status = 200, description = "The plans on sale, by id (without their Stripe prices)", body = Items<PublicPlanView>)))]
/// The plans on sale
pub async fn public_plans(
    state: web::Data<AppState>,
    // A token sent is checked, as on every public route.
    _caller: Caller,
) -> ApiResult<HttpResponse> {
    let plans = state.store.plans(true).await?;
    Ok(HttpResponse::Ok().json(Items {
        items: plans.iter().map(PublicPlanView::new).collect(),
    }))
}

#[utoipa::path(get, operation_id = "billing_admin_plans", path = "/v1/admin/plans", tag = "billing", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "Every plan, on sale or not, by id", body = Items<PlanView>)))]
/// Every plan
pub async fn list_plans(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let plans = state.store.plans(false).await?;
    Ok(HttpResponse::Ok().json(Items {
        items: plans.iter().map(PlanView::new).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlanBody {
    /// A slug of at most 64 characters, such as `digital`.
    #[schema(max_length = 64)]
    id: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// Devices that may read at once, 0 (unlimited) to 1000; default 1.
    #[schema(minimum = 0, maximum = 1000)]
    seats: Option<i64>,
    /// The Stripe prices that buy the plan (default none).
    stripe_price_ids: Option<Vec<String>>,
    /// A Stripe Payment Link (https).
    checkout_url: Option<String>,
    /// Default true.
    active: Option<bool>,
}

#[utoipa::path(post, operation_id = "billing_create_plan", path = "/v1/admin/plans", tag = "billing", security(("bearer" = []), ("session_cookie" = [])), request_body = CreatePlanBody,
    responses((status = 201, description = "The plan", body = PlanView),
        (status = 409, description = "`plan_taken`: a plan with this id exists", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, also when a price already buys another plan", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Create a plan
pub async fn create_plan(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<CreatePlanBody>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let body = body.into_inner()?;
    let input = PlanInput {
        name: body.name,
        seats: body.seats,
        stripe_price_ids: body.stripe_price_ids,
        checkout_url: body.checkout_url.map(Some),
        active: body.active,
    };
    let plan = billing::create_plan(&state, &caller.0.account_id, body.id, input, now_ts()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/admin/plans/{}", plan.id)))
        .json(PlanView::new(&plan)))
}

#[utoipa::path(get, operation_id = "billing_get_plan", path = "/v1/admin/plans/{id}", tag = "billing", security(("bearer" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "The plan id")),
    responses((status = 200, description = "The plan", body = PlanView)))]
/// One plan
pub async fn get_plan(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let plan = state
        .store
        .plan(&plan_id(&req)?)
        .await?
        .ok_or(ApiError::NotFound("there is no plan with this id"))?;
    Ok(HttpResponse::Ok().json(PlanView::new(&plan)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPlanBody {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[schema(minimum = 0, maximum = 1000)]
    seats: Option<i64>,
    /// Replaces the plan's prices.
    stripe_price_ids: Option<Vec<String>>,
    /// null removes the link.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    checkout_url: Option<Option<String>>,
    active: Option<bool>,
}

#[utoipa::path(patch, operation_id = "billing_patch_plan", path = "/v1/admin/plans/{id}", tag = "billing", security(("bearer" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "The plan id")), request_body = PatchPlanBody,
    responses((status = 200, description = "The plan", body = PlanView)))]
/// Change a plan
pub async fn patch_plan(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    body: ApiJson<PatchPlanBody>,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    let id = plan_id(&req)?;
    let body = body.into_inner()?;
    let input = PlanInput {
        name: body.name,
        seats: body.seats,
        stripe_price_ids: body.stripe_price_ids,
        checkout_url: body.checkout_url,
        active: body.active,
    };
    let plan = billing::update_plan(&state, &caller.0.account_id, &id, input, now_ts()).await?;
    Ok(HttpResponse::Ok().json(PlanView::new(&plan)))
}

#[utoipa::path(delete, operation_id = "billing_delete_plan", path = "/v1/admin/plans/{id}", tag = "billing", security(("bearer" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "The plan id")),
    responses((status = 204, description = "The plan is gone"),
        (status = 409, description = "`plan_in_use`: a running subscription is to it (make it inactive instead)", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Delete a plan no running subscription is to
pub async fn delete_plan(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    require_admin(&caller.0)?;
    billing::delete_plan(&state, &caller.0.account_id, &plan_id(&req)?, now_ts()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// The id of a plan on sale.
    plan: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Link {
    pub url: String,
}

#[utoipa::path(post, operation_id = "billing_checkout", path = "/v1/me/checkout", tag = "billing", security(("bearer" = []), ("session_cookie" = [])), request_body = CheckoutBody,
    responses((status = 201, description = "Where the reader pays: the plan's Payment Link with `client_reference_id` (the account id) and `prefilled_email` added", body = Link),
        (status = 422, description = "`validation_failed`: no plan on sale has this id, or it has no checkout_url", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Start paying for a plan
pub async fn checkout(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: ApiJson<CheckoutBody>,
) -> ApiResult<HttpResponse> {
    let CheckoutBody { plan } = body.into_inner()?;
    let account = own_account(&state, &caller.0).await?;
    let url = billing::checkout(&state, &account, &plan).await?;
    Ok(HttpResponse::Created().json(Link { url }))
}

#[utoipa::path(get, operation_id = "billing_portal", path = "/v1/me/billing", tag = "billing", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The Stripe customer portal's login link, the reader's email filled in", body = Link),
        (status = 404, description = "`not_found`: no portal is configured", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Where the reader manages billing
pub async fn billing_portal(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> ApiResult<HttpResponse> {
    let account = own_account(&state, &caller.0).await?;
    let url = billing::billing_portal(&state, &account)?;
    Ok(HttpResponse::Ok().json(Link { url }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Received {
    /// Always true.
    pub received: bool,
}

#[utoipa::path(post, operation_id = "billing_stripe_webhook", path = "/v1/webhooks/stripe", tag = "billing",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`, as Stripe signs")),
    request_body(content = Object, description = "A Stripe event, exactly as Stripe sent it", content_type = "application/json"),
    responses((status = 200, description = "The event is durably applied, was applied before, or is deliberately ignored", body = Received),
        (status = 400, description = "`invalid_signature`: the signature does not hold (nothing changed); `invalid_request`: a signed body that is no event", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Stripe's events (signed with a webhook secret)
pub async fn stripe_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: RawBody,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner()?;
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    billing::receive_stripe(&state, signature, &body, now_ts()).await?;
    Ok(HttpResponse::Ok().json(Received { received: true }))
}
