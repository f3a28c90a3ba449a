use sqlx::AnyConnection;

use super::{Cursor, Store, StoreError};

/// One line of the audit log. `details` never holds passwords, hashes or tokens.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor_id: Option<String>,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

impl AuditEntry {
    pub fn new(
        actor_id: Option<&str>,
        action: &'static str,
        target_type: &'static str,
        target_id: Option<&str>,
    ) -> Self {
        AuditEntry {
            actor_id: actor_id.map(str::to_string),
            action,
            target_type,
            target_id: target_id.map(str::to_string),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// The same entry about `target_id`, for targets whose id the store makes.
    pub fn about(&self, target_id: &str) -> Self {
        let mut entry = self.clone();
        entry.target_id = Some(target_id.to_string());
        entry
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub details: String,
}

#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    pub actor: Option<&'a str>,
    pub target: Option<&'a str>,
    pub action: Option<&'a str>,
}

/// Writes an entry inside the caller's transaction, so it stands or falls with the change.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    entry: &AuditEntry,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor_id, action, target_type, target_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(now)
    .bind(&entry.actor_id)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(&entry.target_id)
    .bind(entry.details.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records an entry on its own (for events that change nothing else).
    pub async fn record_audit(&self, entry: &AuditEntry, now: i64) -> Result<(), StoreError> {
        let mut conn = self.writer().await?;
        record(&mut conn, entry, now).await?;
        Ok(())
    }

    /// Newest first; `limit + 1` rows so the caller can tell whether more follow.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter<'_>,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, actor_id, action, target_type, target_id, details FROM audit_log \
             WHERE ($1 IS NULL OR actor_id = $1) AND ($2 IS NULL OR target_id = $2) \
             AND ($3 IS NULL OR action = $3) \
             AND ($4 IS NULL OR at < $4 OR (at = $4 AND id < $5)) \
             ORDER BY at DESC, id DESC LIMIT $6",
        )
        .bind(filter.actor)
        .bind(filter.target)
        .bind(filter.action)
        .bind(after.map(|c| c.key))
        .bind(after.map(|c| c.id.as_str()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }
}
