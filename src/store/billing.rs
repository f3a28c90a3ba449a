//! Plans, and what Stripe's events have said: linked customers, the state of each
//! subscription to a plan's price, and every event id applied (in the transaction of
//! the change it made, so a repeat changes nothing and a crash loses nothing that was
//! answered).

use sqlx::AnyConnection;

use super::accounts::{fetch_account, ACCOUNT_COLUMNS};
use super::audit::{record, AuditEntry};
use super::webhooks::{emit, Event};
use super::{conflict_or, AccountRow, Store, StoreError};
use crate::domain::SubscriptionSource;
use crate::paywall::billing::{self, Entitlement, EventKey, Fact, StateFact, Tracked};

/// A plan as stored, with its prices in their order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    pub id: String,
    pub name: String,
    pub seats: i64,
    pub checkout_url: Option<String>,
    pub active: bool,
    pub price_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A plan's fields as an admin writes them (every one, after defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFields {
    pub name: String,
    pub seats: i64,
    pub checkout_url: Option<String>,
    pub active: bool,
    pub price_ids: Vec<String>,
}

/// Why a plan could not be written or removed, besides the database failing.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("a plan with this id already exists")]
    Taken,
    #[error("no plan has this id")]
    NotFound,
    #[error("the price {price} already buys the plan {plan}")]
    PriceTaken { price: String, plan: String },
    #[error("a subscription is to this plan")]
    InUse,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PlanError {
    fn from(error: sqlx::Error) -> Self {
        PlanError::Store(error.into())
    }
}

#[derive(sqlx::FromRow)]
struct PlanColumns {
    id: String,
    name: String,
    seats: i64,
    checkout_url: Option<String>,
    active: i64,
    created_at: i64,
    updated_at: i64,
}

const PLAN_COLUMNS: &str = "id, name, seats, checkout_url, active, created_at, updated_at";

async fn prices_of(conn: &mut AnyConnection, plan_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT price_id FROM plan_prices WHERE plan_id = $1 ORDER BY position")
        .bind(plan_id)
        .fetch_all(conn)
        .await
}

async fn fetch_plan(conn: &mut AnyConnection, id: &str) -> Result<Option<PlanRow>, sqlx::Error> {
    let sql = format!("SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1");
    let Some(row) = sqlx::query_as::<_, PlanColumns>(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let price_ids = prices_of(conn, &row.id).await?;
    Ok(Some(plan_row(row, price_ids)))
}

fn plan_row(row: PlanColumns, price_ids: Vec<String>) -> PlanRow {
    PlanRow {
        id: row.id,
        name: row.name,
        seats: row.seats,
        checkout_url: row.checkout_url,
        active: row.active != 0,
        price_ids,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Gives `plan_id` exactly `prices`, refusing a price another plan has.
async fn put_prices(
    conn: &mut AnyConnection,
    plan_id: &str,
    prices: &[String],
) -> Result<(), PlanError> {
    for price in prices {
        let other: Option<String> = sqlx::query_scalar(
            "SELECT plan_id FROM plan_prices WHERE price_id = $1 AND plan_id <> $2",
        )
        .bind(price)
        .bind(plan_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(plan) = other {
            return Err(PlanError::PriceTaken {
                price: price.clone(),
                plan,
            });
        }
    }
    sqlx::query("DELETE FROM plan_prices WHERE plan_id = $1")
        .bind(plan_id)
        .execute(&mut *conn)
        .await?;
    for (position, price) in prices.iter().enumerate() {
        sqlx::query("INSERT INTO plan_prices (price_id, plan_id, position) VALUES ($1, $2, $3)")
            .bind(price)
            .bind(plan_id)
            .bind(position as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The rest of a plan's write: its prices and audit entry, then the plan as written.
async fn finish_plan(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    fields: &PlanFields,
    audit: &AuditEntry,
    now: i64,
) -> Result<PlanRow, PlanError> {
    put_prices(&mut tx, id, &fields.price_ids).await?;
    record(&mut tx, audit, now).await?;
    let row = fetch_plan(&mut tx, id).await?.ok_or(PlanError::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// What applying one Stripe event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The event's id was applied before: nothing changed.
    Duplicate,
    /// It changed what is kept (and perhaps an account's subscription).
    Applied,
    /// Kept for a customer no checkout has linked yet: it counts once the link arrives.
    Pending,
    /// Older than what its subscription already has, or the subscription is deleted.
    Stale,
    /// Nothing in it concerns a plan or an account.
    Ignored,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Applied => "applied",
            EventOutcome::Pending => "pending",
            EventOutcome::Stale => "stale",
            EventOutcome::Ignored => "ignored",
        }
    }
}

/// The audit's actor for what Stripe's events change.
pub const STRIPE_ACTOR: &str = "stripe";

#[derive(sqlx::FromRow)]
struct TrackedColumns {
    id: String,
    plan_id: String,
    status: String,
    period_end: Option<i64>,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    event_created: i64,
    event_rank: i64,
    event_id: String,
}

impl TrackedColumns {
    fn tracked(&self) -> Tracked {
        Tracked {
            status: self.status.clone(),
            period_end: self.period_end,
            started_at: self.started_at,
            ended_at: self.ended_at,
            key: EventKey {
                created: self.event_created,
                rank: self.event_rank,
                id: self.event_id.clone(),
            },
        }
    }
}

const TRACKED_COLUMNS: &str = "s.id, s.plan_id, s.status, s.period_end, s.started_at, s.ended_at, \
    s.event_created, s.event_rank, s.event_id";

impl Store {
    /// Every plan (only those on sale with `active_only`), by id.
    pub async fn plans(&self, active_only: bool) -> Result<Vec<PlanRow>, StoreError> {
        let mut conn = self.reader().await?;
        let sql = format!(
            "SELECT {PLAN_COLUMNS} FROM plans {} ORDER BY id",
            if active_only { "WHERE active = 1" } else { "" }
        );
        let rows = sqlx::query_as::<_, PlanColumns>(&sql)
            .fetch_all(&mut *conn)
            .await?;
        // Every plan's prices in one read, not one read a plan.
        let prices: Vec<(String, String)> =
            sqlx::query_as("SELECT plan_id, price_id FROM plan_prices ORDER BY plan_id, position")
                .fetch_all(&mut *conn)
                .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mine = prices
                    .iter()
                    .filter(|(plan, _)| *plan == row.id)
                    .map(|(_, price)| price.clone())
                    .collect();
                plan_row(row, mine)
            })
            .collect())
    }

    pub async fn plan(&self, id: &str) -> Result<Option<PlanRow>, StoreError> {
        Ok(fetch_plan(&mut *self.reader().await?, id).await?)
    }

    pub async fn create_plan(
        &self,
        id: &str,
        fields: &PlanFields,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<PlanRow, PlanError> {
        let mut tx = self.begin_write(Some("plans")).await?;
        sqlx::query(
            "INSERT INTO plans (id, name, seats, checkout_url, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id)
        .bind(&fields.name)
        .bind(fields.seats)
        .bind(&fields.checkout_url)
        .bind(i64::from(fields.active))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match conflict_or(e) {
            StoreError::Conflict => PlanError::Taken,
            other => PlanError::Store(other),
        })?;
        let row = finish_plan(tx, id, fields, audit, now).await?;
        // Sessions know their plan's seats.
        self.sessions_changed().await?;
        Ok(row)
    }

    /// Replaces a plan's fields with `change(current)`.
    pub async fn update_plan(
        &self,
        id: &str,
        change: impl FnOnce(&PlanRow) -> PlanFields,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<PlanRow, PlanError> {
        let mut tx = self.begin_write(Some("plans")).await?;
        let current = fetch_plan(&mut tx, id).await?.ok_or(PlanError::NotFound)?;
        let fields = &change(&current);
        sqlx::query(
            "UPDATE plans SET name = $2, seats = $3, checkout_url = $4, active = $5, updated_at = $6 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(&fields.name)
        .bind(fields.seats)
        .bind(&fields.checkout_url)
        .bind(i64::from(fields.active))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = finish_plan(tx, id, fields, audit, now).await?;
        // Sessions know their plan's seats.
        self.sessions_changed().await?;
        Ok(row)
    }

    /// Removes a plan no running subscription is to (a retired plan is made inactive).
    pub async fn delete_plan(
        &self,
        id: &str,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<(), PlanError> {
        let mut tx = self.begin_write(Some("plans")).await?;
        fetch_plan(&mut tx, id).await?.ok_or(PlanError::NotFound)?;
        let accounts: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE subscription_plan = $1 \
             AND (subscription_expires_at IS NULL OR subscription_expires_at > $2)",
        )
        .bind(id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let billed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM stripe_subscriptions WHERE plan_id = $1 \
             AND status NOT IN ('deleted', 'canceled', 'incomplete_expired')",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if accounts + billed > 0 {
            return Err(PlanError::InUse);
        }
        sqlx::query("DELETE FROM plans WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, audit, now).await?;
        tx.commit().await?;
        self.sessions_changed().await?;
        Ok(())
    }

    /// Applies one verified Stripe event, once: its id is written in the same
    /// transaction as what it changes. `grace_secs` is how long `past_due` still reads.
    pub async fn apply_stripe_event(
        &self,
        event: &billing::Envelope,
        fact: &Fact,
        grace_secs: i64,
        now: i64,
    ) -> Result<EventOutcome, StoreError> {
        // One event at a time, on every instance: events of one account are applied
        // in turn, each seeing what the one before it wrote.
        let mut tx = self.begin_write(Some("stripe")).await?;
        let fresh = sqlx::query(
            "INSERT INTO stripe_events (id, type, created, outcome, received_at) \
             VALUES ($1, $2, $3, 'applying', $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&event.kind)
        .bind(event.created)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(EventOutcome::Duplicate);
        }
        let mut touched = false;
        let outcome = match fact {
            Fact::Ignored(_) => EventOutcome::Ignored,
            Fact::Link {
                account_id,
                customer_id,
            } => {
                if fetch_account(&mut tx, account_id).await?.is_none() {
                    EventOutcome::Ignored
                } else {
                    let before: Option<String> = sqlx::query_scalar(
                        "SELECT account_id FROM stripe_customers WHERE customer_id = $1",
                    )
                    .bind(customer_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO stripe_customers (customer_id, account_id, linked_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (customer_id) \
                         DO UPDATE SET account_id = excluded.account_id, linked_at = excluded.linked_at",
                    )
                    .bind(customer_id)
                    .bind(account_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    touched |= project(&mut tx, account_id, &event.id, grace_secs, now).await?;
                    if let Some(before) = before.filter(|b| b != account_id) {
                        touched |= project(&mut tx, &before, &event.id, grace_secs, now).await?;
                    }
                    EventOutcome::Applied
                }
            }
            Fact::State(fact) => match plan_of(&mut tx, fact).await? {
                None => EventOutcome::Ignored,
                Some(plan_id) => {
                    let sql = format!(
                        "SELECT {TRACKED_COLUMNS} FROM stripe_subscriptions s WHERE s.id = $1"
                    );
                    let stored = sqlx::query_as::<_, TrackedColumns>(&sql)
                        .bind(&fact.subscription_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|row| row.tracked());
                    let (superseded, kept) = billing::next(stored.as_ref(), &fact.state);
                    if let Some(kept) = &kept {
                        keep(&mut tx, fact, &plan_id, kept, now).await?;
                    }
                    let account: Option<String> = sqlx::query_scalar(
                        "SELECT account_id FROM stripe_customers WHERE customer_id = $1",
                    )
                    .bind(&fact.customer_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match account {
                        _ if !superseded => EventOutcome::Stale,
                        None => EventOutcome::Pending,
                        Some(account) => {
                            touched |=
                                project(&mut tx, &account, &event.id, grace_secs, now).await?;
                            EventOutcome::Applied
                        }
                    }
                }
            },
        };
        sqlx::query("UPDATE stripe_events SET outcome = $2 WHERE id = $1")
            .bind(&event.id)
            .bind(outcome.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if touched {
            self.sessions_changed().await?;
        }
        Ok(outcome)
    }

    /// The outcome recorded for a Stripe event id, if it was received.
    pub async fn stripe_event_outcome(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT outcome FROM stripe_events WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.reader().await?)
                .await?,
        )
    }
}

/// The plan the first of the fact's prices buys, if any does.
async fn plan_of(
    conn: &mut AnyConnection,
    fact: &StateFact,
) -> Result<Option<String>, sqlx::Error> {
    for price in &fact.price_ids {
        let plan: Option<String> =
            sqlx::query_scalar("SELECT plan_id FROM plan_prices WHERE price_id = $1")
                .bind(price)
                .fetch_optional(&mut *conn)
                .await?;
        if plan.is_some() {
            return Ok(plan);
        }
    }
    Ok(None)
}

async fn keep(
    conn: &mut AnyConnection,
    fact: &StateFact,
    plan_id: &str,
    state: &Tracked,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stripe_subscriptions (id, customer_id, plan_id, status, period_end, started_at, \
         ended_at, event_created, event_rank, event_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE SET \
         customer_id = excluded.customer_id, plan_id = excluded.plan_id, status = excluded.status, \
         period_end = excluded.period_end, started_at = excluded.started_at, \
         ended_at = excluded.ended_at, event_created = excluded.event_created, \
         event_rank = excluded.event_rank, event_id = excluded.event_id, \
         updated_at = excluded.updated_at",
    )
    .bind(&fact.subscription_id)
    .bind(&fact.customer_id)
    .bind(plan_id)
    .bind(&state.status)
    .bind(state.period_end)
    .bind(state.started_at)
    .bind(state.ended_at)
    .bind(state.key.created)
    .bind(state.key.rank)
    .bind(&state.key.id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes onto the account the subscription its Stripe subscriptions give (the one
/// that reads longest), with an audit entry; whether the account changed. An account
/// none of whose subscriptions says anything yet is left as it is.
async fn project(
    conn: &mut AnyConnection,
    account_id: &str,
    event_id: &str,
    grace_secs: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT {TRACKED_COLUMNS} FROM stripe_subscriptions s \
         JOIN stripe_customers c ON c.customer_id = s.customer_id \
         WHERE c.account_id = $1 ORDER BY s.id"
    );
    let rows = sqlx::query_as::<_, TrackedColumns>(&sql)
        .bind(account_id)
        .fetch_all(&mut *conn)
        .await?;
    let Some((entitlement, from)) = rows
        .iter()
        .filter_map(|row| billing::entitlement(&row.tracked(), grace_secs).map(|e| (e, row)))
        .max_by_key(|(e, _)| (e.expires_at, e.started_at, e.status as u8))
    else {
        return Ok(false);
    };
    let Some(account) = fetch_account(conn, account_id).await? else {
        return Ok(false);
    };
    let Entitlement {
        status,
        started_at,
        expires_at,
    } = entitlement;
    let started_at = started_at.unwrap_or(now);
    if account.subscription_plan.as_deref() == Some(&from.plan_id)
        && account.subscription_expires_at == Some(expires_at)
        && account.subscription_started_at == Some(started_at)
        && account.subscription_source.as_deref() == Some(SubscriptionSource::Stripe.as_str())
        && account.subscription_status.as_deref() == Some(status.as_str())
    {
        return Ok(false);
    }
    let sql = format!(
        "UPDATE accounts SET subscription_plan = $2, subscription_started_at = $3, \
         subscription_expires_at = $4, subscription_source = 'stripe', subscription_status = $5, \
         updated_at = $6 WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
    );
    let updated: AccountRow = sqlx::query_as(&sql)
        .bind(account_id)
        .bind(&from.plan_id)
        .bind(started_at)
        .bind(expires_at)
        .bind(status.as_str())
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
    let entry = AuditEntry::new(
        Some(STRIPE_ACTOR),
        "subscription.stripe",
        "account",
        Some(account_id),
    )
    .details(serde_json::json!({
        "plan": from.plan_id,
        "status": status,
        "expires_at": crate::domain::rfc3339(expires_at),
        "stripe_subscription": from.id,
        "stripe_event": event_id,
        "active": expires_at > now,
    }));
    record(conn, &entry, now).await?;
    emit(
        conn,
        &[Event::account("subscription.updated", &updated, now)],
        now,
    )
    .await?;
    Ok(true)
}
