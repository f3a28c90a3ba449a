//! Outbound webhooks: the endpoints, and the outbox of their deliveries. An event is
//! written by `emit` inside the transaction of the change it tells of, so the two
//! commit together or not at all; the dispatcher (`app::deliveries`) sends it later.

use sqlx::AnyConnection;

use super::audit::{record, AuditEntry};
use super::{AccountRow, ArticleRow, Cursor, Store, StoreError};
use crate::domain::rfc3339;

/// The events an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "account.created",
    "account.updated",
    "account.deleted",
    "subscription.updated",
    "article.published",
    "article.updated",
    "article.unpublished",
];

/// One event to tell: its type, what it is about (deliveries about one subject go out
/// in order) and its data.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub subject: String,
    pub data: serde_json::Value,
}

impl Event {
    /// An account event; its data is the account as the admin API shows it.
    pub fn account(kind: &'static str, row: &AccountRow, now: i64) -> Event {
        let subscription = row.subscription_plan.as_ref().map(|plan| {
            serde_json::json!({
                "plan": plan,
                "started_at": row.subscription_started_at.map(rfc3339),
                "expires_at": row.subscription_expires_at.map(rfc3339),
                "active": row.subscription_expires_at.is_none_or(|at| at > now),
                "source": row.subscription_source().map_or("admin", |s| s.as_str()),
                "status": row.subscription_status(now).map_or("active", |s| s.as_str()),
            })
        });
        Event {
            kind,
            subject: format!("account:{}", row.id),
            data: serde_json::json!({
                "id": row.id,
                "email": row.email,
                "display_name": row.display_name,
                "role": row.role.as_str(),
                "status": row.status.as_str(),
                "created_at": rfc3339(row.created_at),
                "subscription": subscription,
            }),
        }
    }

    /// An article event: what it is and where, never its text (gated text leaves the
    /// service only through the reading path).
    pub fn article(kind: &'static str, row: &ArticleRow) -> Event {
        let meta = &row.meta;
        Event {
            kind,
            subject: format!("article:{}", meta.id),
            data: serde_json::json!({
                "id": meta.id,
                "slug": meta.slug,
                "title": meta.title,
                "standfirst": meta.standfirst,
                "section": meta.section,
                "author": meta.author,
                "access": meta.access.as_str(),
                "status": meta.status.as_str(),
                "published_at": meta.published_at.map(rfc3339),
                "updated_at": rfc3339(meta.updated_at),
                "external_id": row.external_id,
                "canonical_url": row.canonical_url,
            }),
        }
    }

    /// The event after an article write: published, updated (published before and
    /// after), unpublished, or none (a draft stays a draft).
    pub fn article_change(was_published: bool, row: &ArticleRow) -> Option<Event> {
        let published = row.meta.status == crate::domain::ArticleStatus::Published;
        let kind = match (was_published, published) {
            (false, true) => "article.published",
            (true, true) => "article.updated",
            (true, false) => "article.unpublished",
            (false, false) => return None,
        };
        Some(Event::article(kind, row))
    }
}

/// Writes `events` to the outbox of every endpoint subscribed to them, in the caller's
/// transaction (a paused endpoint's wait until it is active again). An event no
/// endpoint wants is not written at all.
pub(crate) async fn emit(
    conn: &mut AnyConnection,
    events: &[Event],
    now: i64,
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let endpoints: Vec<(String, String)> = sqlx::query_as("SELECT id, events FROM webhooks")
        .fetch_all(&mut *conn)
        .await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    for event in events {
        let subscribed: Vec<&str> = endpoints
            .iter()
            .filter(|(_, wanted)| wanted.split_whitespace().any(|w| w == event.kind))
            .map(|(id, _)| id.as_str())
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let body = serde_json::json!({
            "type": event.kind,
            "timestamp": rfc3339(now),
            "data": event.data,
        });
        sqlx::query(
            "INSERT INTO webhook_messages (id, type, subject, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&message_id)
        .bind(event.kind)
        .bind(&event.subject)
        .bind(body.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        for webhook_id in subscribed {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, webhook_id, message_id, subject, status, \
                 attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(webhook_id)
            .bind(&message_id)
            .bind(&event.subject)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub description: Option<String>,
    pub secret: String,
    pub active: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const WEBHOOK_COLUMNS: &str =
    "id, url, events, description, secret, active, created_at, updated_at";

/// What a PATCH changes; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<String>,
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub seq: i64,
    pub id: String,
    pub message_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// A delivery whose turn has come: the head of its (endpoint, subject) chain, due, and
/// claimed by no live instance.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueDelivery {
    pub seq: i64,
    pub url: String,
    pub secret: String,
    pub message_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
    pub created_at: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Attempt {
    Delivered {
        status: i64,
    },
    Retry {
        status: Option<i64>,
        error: String,
        at: i64,
    },
    GaveUp {
        status: Option<i64>,
        error: String,
    },
}

impl Store {
    pub async fn create_webhook(
        &self,
        row: &WebhookRow,
        audit: &AuditEntry,
    ) -> Result<WebhookRow, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let created = sqlx::query_as::<_, WebhookRow>(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(&row.id)
        .bind(&row.url)
        .bind(&row.events)
        .bind(&row.description)
        .bind(&row.secret)
        .bind(row.active)
        .bind(row.created_at)
        .bind(row.updated_at)
        .fetch_one(&mut *tx)
        .await?;
        let entry = audit
            .about(&row.id)
            .details(serde_json::json!({"url": row.url, "events": row.events}));
        record(&mut tx, &entry, row.created_at).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn webhook(&self, id: &str) -> Result<Option<WebhookRow>, StoreError> {
        Ok(sqlx::query_as::<_, WebhookRow>(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.reader().await?)
        .await?)
    }

    /// Newest first; `limit + 1` rows.
    pub async fn list_webhooks(
        &self,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<WebhookRow>, StoreError> {
        Ok(sqlx::query_as::<_, WebhookRow>(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks \
             WHERE ($1 IS NULL OR created_at < $1 OR (created_at = $1 AND id < $2)) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(after.map(|c| c.key))
        .bind(after.map(|c| c.id.as_str()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    pub async fn update_webhook(
        &self,
        id: &str,
        changes: &WebhookChanges,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<WebhookRow, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let row = sqlx::query_as::<_, WebhookRow>(&format!(
            "UPDATE webhooks SET url = COALESCE($2, url), events = COALESCE($3, events), \
             description = CASE WHEN $4 = 1 THEN $5 ELSE description END, \
             active = COALESCE($6, active), updated_at = $7 WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(id)
        .bind(&changes.url)
        .bind(&changes.events)
        .bind(i64::from(changes.description.is_some()))
        .bind(changes.description.clone().flatten())
        .bind(changes.active.map(i64::from))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let entry = audit.about(id).details(serde_json::json!({
            "url": changes.url, "events": changes.events, "active": changes.active,
        }));
        record(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes an endpoint and, by cascade, its deliveries.
    pub async fn delete_webhook(
        &self,
        id: &str,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(None).await?;
        let url: Option<String> =
            sqlx::query_scalar("DELETE FROM webhooks WHERE id = $1 RETURNING url")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(url) = url else {
            return Err(StoreError::NotFound);
        };
        record(
            &mut tx,
            &audit.about(id).details(serde_json::json!({"url": url})),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An endpoint's deliveries, newest first; `limit + 1` rows.
    pub async fn list_deliveries(
        &self,
        webhook_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as::<_, DeliveryRow>(
            "SELECT d.seq, d.id, d.message_id, m.type, d.subject, d.status, d.attempts, \
             d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, \
             d.created_at, d.finished_at FROM webhook_deliveries d \
             JOIN webhook_messages m ON m.id = d.message_id \
             WHERE d.webhook_id = $1 AND ($2 IS NULL OR d.seq < $2) \
             ORDER BY d.seq DESC LIMIT $3",
        )
        .bind(webhook_id)
        .bind(after.map(|c| c.key))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    /// Up to `limit` deliveries whose turn has come, oldest first.
    pub async fn due_deliveries(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        Ok(sqlx::query_as::<_, DueDelivery>(
            "SELECT d.seq, w.url, w.secret, m.id AS message_id, m.type, m.payload, d.attempts, \
             m.created_at FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id \
             JOIN webhook_messages m ON m.id = d.message_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
             AND (d.locked_until IS NULL OR d.locked_until <= $1) AND w.active = 1 \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
               AND e.subject = d.subject AND e.status = 'pending' AND e.seq < d.seq) \
             ORDER BY d.seq LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    /// Claims a delivery for this instance until `until`: false when another instance
    /// claimed it first (or it is no longer pending).
    pub async fn claim_delivery(&self, seq: i64, now: i64, until: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET locked_until = $3 WHERE seq = $1 AND status = 'pending' \
             AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(seq)
        .bind(now)
        .bind(until)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records an attempt's outcome and releases the claim.
    pub async fn finish_attempt(
        &self,
        seq: i64,
        attempt: &Attempt,
        now: i64,
    ) -> Result<(), StoreError> {
        let (status, next_at, code, error, finished) = match attempt {
            Attempt::Delivered { status } => ("delivered", now, Some(*status), None, Some(now)),
            Attempt::Retry { status, error, at } => ("pending", *at, *status, Some(error), None),
            Attempt::GaveUp { status, error } => ("failed", now, *status, Some(error), Some(now)),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, \
             next_attempt_at = $3, locked_until = NULL, last_attempt_at = $4, \
             last_status_code = $5, last_error = $6, finished_at = $7 WHERE seq = $1",
        )
        .bind(seq)
        .bind(status)
        .bind(next_at)
        .bind(now)
        .bind(code)
        .bind(error.map(String::as_str))
        .bind(finished)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// Deliveries that waiting holds back (pending), for the metrics gauge.
    pub async fn pending_deliveries(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")
                .fetch_one(&mut *self.reader().await?)
                .await?,
        )
    }

    /// Deletes finished deliveries older than `before`, and messages no delivery needs.
    pub async fn prune_deliveries(&self, before: i64) -> Result<u64, StoreError> {
        let mut conn = self.writer().await?;
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < $1",
        )
        .bind(before)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM webhook_messages WHERE created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM webhook_deliveries d WHERE d.message_id = webhook_messages.id)",
        )
        .bind(before)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }
}
