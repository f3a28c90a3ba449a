//! Payments: plans, where a reader pays (a plan's Stripe Payment Link) and manages
//! billing (Stripe's customer portal), and Stripe's events. No Stripe secret key is
//! kept: Stripe tells Paywall what happened, signed, and Paywall never calls Stripe.

use crate::auth::stripe;
use crate::domain::Slug;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::paywall::billing::{self, Fact};
use crate::state::AppState;
use crate::store::billing::{EventOutcome, PlanError, PlanFields, PlanRow};
use crate::store::{AccountRow, AuditEntry};

/// Plan ids are slugs of at most this many bytes (a subscription's `plan` is one).
pub const MAX_PLAN_ID: usize = 64;
pub const MAX_PLAN_NAME: usize = 100;
pub const MAX_SEATS: i64 = 1_000;
pub const MAX_PRICES: usize = 50;

/// A plan's fields as a request gives them: absent ones keep their value (or take
/// their default on creation); `checkout_url: null` removes the link.
#[derive(Debug, Default)]
pub struct PlanInput {
    pub name: Option<String>,
    pub seats: Option<i64>,
    pub stripe_price_ids: Option<Vec<String>>,
    pub checkout_url: Option<Option<String>>,
    pub active: Option<bool>,
}

pub fn check_plan_id(raw: &str) -> Result<String, FieldError> {
    if raw.len() > MAX_PLAN_ID {
        return Err(FieldError::new(
            "id",
            format!("must be at most {MAX_PLAN_ID} characters"),
        ));
    }
    Slug::parse(raw)
        .map(|slug| slug.as_str().to_string())
        .map_err(|message| FieldError::new("id", message))
}

/// Checks every given field; the errors name each one that is wrong.
fn checked(input: PlanInput, errors: &mut Vec<FieldError>) -> PlanInput {
    let name = input.name.and_then(|name| {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_PLAN_NAME {
            errors.push(FieldError::new(
                "name",
                format!("must be 1 to {MAX_PLAN_NAME} characters"),
            ));
            None
        } else if name.chars().any(char::is_control) {
            errors.push(FieldError::new("name", "must not hold control characters"));
            None
        } else {
            Some(name)
        }
    });
    let seats = input.seats.filter(|seats| {
        let fits = (0..=MAX_SEATS).contains(seats);
        if !fits {
            errors.push(FieldError::new(
                "seats",
                format!("must be 0 (unlimited) to {MAX_SEATS}"),
            ));
        }
        fits
    });
    let stripe_price_ids = input.stripe_price_ids.and_then(|prices| {
        let well_formed = |p: &String| {
            !p.is_empty()
                && p.len() <= 255
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        let mut unique = prices.clone();
        unique.sort();
        unique.dedup();
        if prices.len() > MAX_PRICES {
            errors.push(FieldError::new(
                "stripe_price_ids",
                format!("at most {MAX_PRICES} prices"),
            ));
            None
        } else if let Some(bad) = prices.iter().find(|p| !well_formed(p)) {
            errors.push(FieldError::new(
                "stripe_price_ids",
                format!("{bad:?} is not a Stripe price id such as price_1PqRsTuVwXyZ"),
            ));
            None
        } else if unique.len() != prices.len() {
            errors.push(FieldError::new(
                "stripe_price_ids",
                "names a price more than once",
            ));
            None
        } else {
            Some(prices)
        }
    });
    let checkout_url = match input.checkout_url {
        Some(Some(url)) if !crate::config::https_or_local(&url) => {
            errors.push(FieldError::new(
                "checkout_url",
                "must be an https:// URL, such as a Stripe Payment Link https://buy.stripe.com/...",
            ));
            None
        }
        other => other,
    };
    PlanInput {
        name,
        seats,
        stripe_price_ids,
        checkout_url,
        active: input.active,
    }
}

fn plan_error(error: PlanError) -> ApiError {
    match error {
        PlanError::Taken => ApiError::PlanTaken,
        PlanError::NotFound => ApiError::NotFound("there is no plan with this id"),
        PlanError::PriceTaken { price, plan } => ApiError::validation(
            "stripe_price_ids",
            format!("{price} already buys the plan {plan:?}: a price buys one plan"),
        ),
        PlanError::InUse => ApiError::PlanInUse(
            "a running subscription is to this plan; set active to false to stop selling it",
        ),
        PlanError::Store(error) => error.into(),
    }
}

fn plan_audit(admin_id: &str, action: &'static str, plan_id: &str) -> AuditEntry {
    AuditEntry::new(Some(admin_id), action, "plan", Some(plan_id))
}

fn described(plan: &PlanFields) -> serde_json::Value {
    serde_json::json!({
        "name": plan.name,
        "seats": plan.seats,
        "stripe_price_ids": plan.price_ids,
        "checkout_url": plan.checkout_url,
        "active": plan.active,
    })
}

/// A new plan: `name` is required; one seat, no prices, no link and on sale unless said.
pub async fn create_plan(
    state: &AppState,
    admin_id: &str,
    id: Option<String>,
    input: PlanInput,
    now: i64,
) -> ApiResult<PlanRow> {
    let mut errors = Vec::new();
    let id = match id {
        Some(id) => check_plan_id(&id).map_err(|e| errors.push(e)).ok(),
        None => {
            errors.push(FieldError::new("id", "is required"));
            None
        }
    };
    if input.name.is_none() {
        errors.push(FieldError::new("name", "is required"));
    }
    let input = checked(input, &mut errors);
    let (Some(id), Some(name), true) = (id, input.name, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let fields = PlanFields {
        name,
        seats: input.seats.unwrap_or(1),
        checkout_url: input.checkout_url.flatten(),
        active: input.active.unwrap_or(true),
        price_ids: input.stripe_price_ids.unwrap_or_default(),
    };
    let entry = plan_audit(admin_id, "plan.create", &id).details(described(&fields));
    state
        .store
        .create_plan(&id, &fields, &entry, now)
        .await
        .map_err(plan_error)
}

/// Changes the given fields of a plan.
pub async fn update_plan(
    state: &AppState,
    admin_id: &str,
    id: &str,
    input: PlanInput,
    now: i64,
) -> ApiResult<PlanRow> {
    let mut errors = Vec::new();
    let input = checked(input, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut entry = plan_audit(admin_id, "plan.update", id);
    let given = serde_json::json!({
        "name": input.name,
        "seats": input.seats,
        "stripe_price_ids": input.stripe_price_ids,
        "checkout_url": input.checkout_url,
        "active": input.active,
    });
    // Only what the request changed.
    if let serde_json::Value::Object(mut fields) = given {
        fields.retain(|_, v| !v.is_null());
        if input.checkout_url == Some(None) {
            fields.insert("checkout_url".into(), serde_json::Value::Null);
        }
        entry = entry.details(serde_json::Value::Object(fields));
    }
    state
        .store
        .update_plan(
            id,
            |current| PlanFields {
                name: input.name.unwrap_or_else(|| current.name.clone()),
                seats: input.seats.unwrap_or(current.seats),
                checkout_url: input
                    .checkout_url
                    .unwrap_or_else(|| current.checkout_url.clone()),
                active: input.active.unwrap_or(current.active),
                price_ids: input
                    .stripe_price_ids
                    .unwrap_or_else(|| current.price_ids.clone()),
            },
            &entry,
            now,
        )
        .await
        .map_err(plan_error)
}

pub async fn delete_plan(state: &AppState, admin_id: &str, id: &str, now: i64) -> ApiResult<()> {
    state
        .store
        .delete_plan(id, &plan_audit(admin_id, "plan.delete", id), now)
        .await
        .map_err(plan_error)
}

/// `url` with `pairs` added to its query (replacing any of the same names).
fn with_query(url: &str, pairs: &[(&str, &str)]) -> ApiResult<String> {
    let mut url = url::Url::parse(url).map_err(ApiError::internal)?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !pairs.iter().any(|(n, _)| n == name))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        query.extend_pairs(kept);
        query.extend_pairs(pairs.iter().copied());
    }
    Ok(url.into())
}

/// Where `account` pays for `plan_id`: the plan's Payment Link with the account's id as
/// `client_reference_id` (so the checkout's event names the account) and its email
/// filled in.
pub async fn checkout(state: &AppState, account: &AccountRow, plan_id: &str) -> ApiResult<String> {
    let plan = state
        .store
        .plan(plan_id)
        .await?
        .filter(|plan| plan.active)
        .ok_or_else(|| ApiError::validation("plan", "no plan on sale has this id"))?;
    let link = plan.checkout_url.ok_or_else(|| {
        ApiError::validation(
            "plan",
            "this plan has no checkout_url: it is not sold online",
        )
    })?;
    with_query(
        &link,
        &[
            ("client_reference_id", account.id.as_str()),
            ("prefilled_email", account.email.as_str()),
        ],
    )
}

/// Where `account` manages its billing: the customer portal's login link with its
/// email filled in; 404 when no portal is configured.
pub fn billing_portal(state: &AppState, account: &AccountRow) -> ApiResult<String> {
    let portal = state
        .settings
        .stripe_portal_url
        .as_deref()
        .ok_or(ApiError::NotFound(
            "no billing portal is configured (PAYWALL_STRIPE_PORTAL_URL)",
        ))?;
    with_query(portal, &[("prefilled_email", account.email.as_str())])
}

/// A Stripe webhook delivery: its signature checked over the raw body, then the event
/// applied once and durably (or deliberately ignored). Every delivery is counted by
/// type and outcome.
pub async fn receive_stripe(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> ApiResult<EventOutcome> {
    let refused = |message: String| {
        crate::metrics::stripe_event(None, "invalid_signature");
        tracing::warn!(reason = %message, "a Stripe webhook delivery was refused");
        ApiError::InvalidSignature(message)
    };
    let secrets = &state.settings.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(refused(
            "no webhook signing secret is configured (PAYWALL_STRIPE_WEBHOOK_SECRETS)".into(),
        ));
    }
    stripe::verify(signature, body, secrets, now).map_err(|e| refused(e.to_string()))?;
    let event: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::BadRequest("the event is not JSON".into()))?;
    let envelope = billing::envelope(&event).map_err(|m| ApiError::BadRequest(m.into()))?;
    let fact = billing::facts(&envelope);
    let grace = state.settings.billing_grace_days.saturating_mul(86_400);
    let outcome = state
        .store
        .apply_stripe_event(&envelope, &fact, grace, now)
        .await?;
    crate::metrics::stripe_event(Some(&envelope.kind), outcome.as_str());
    let why = match &fact {
        Fact::Ignored(why) => *why,
        Fact::Link { .. } if outcome == EventOutcome::Ignored => {
            "the checkout's client_reference_id names no account"
        }
        Fact::State(_) if outcome == EventOutcome::Ignored => {
            "no plan has the subscription's price"
        }
        _ => "",
    };
    tracing::info!(
        event = %envelope.id,
        kind = %envelope.kind,
        outcome = outcome.as_str(),
        why,
        "Stripe event"
    );
    Ok(outcome)
}
