//! API keys: stored by digest, listed with their last use, revoked in place.

use super::audit::{record, AuditEntry};
use super::{Cursor, Store, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub prefix: String,
    pub digest_kid: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str =
    "id, name, scopes, prefix, digest_kid, created_by, created_at, last_used_at, revoked_at";

pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub scopes: &'a str,
    pub prefix: &'a str,
    pub digest: &'a str,
    pub digest_kid: &'a str,
    pub created_by: &'a str,
}

/// How often a key's `last_used_at` is written: a key used all the time costs one write
/// a minute, not one per request.
const LAST_USE_EVERY_SECS: i64 = 60;

impl Store {
    pub async fn create_api_key(
        &self,
        new: &NewApiKey<'_>,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<ApiKeyRow, StoreError> {
        let id = format!("key_{}", uuid::Uuid::now_v7().simple());
        let mut tx = self.begin_write(None).await?;
        let row = sqlx::query_as::<_, ApiKeyRow>(&format!(
            "INSERT INTO api_keys (id, name, scopes, prefix, digest, digest_kid, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(&id)
        .bind(new.name)
        .bind(new.scopes)
        .bind(new.prefix)
        .bind(new.digest)
        .bind(new.digest_kid)
        .bind(new.created_by)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let entry = audit
            .about(&id)
            .details(serde_json::json!({"name": new.name, "scopes": new.scopes}));
        record(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The key with the first of `digests` that is stored (the current secret's first),
    /// revoked or not, and which of them matched.
    pub async fn api_key_by_digest(
        &self,
        digests: &[String],
    ) -> Result<Option<(ApiKeyRow, usize)>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE digest = $1");
        let mut conn = self.reader().await?;
        for (at, digest) in digests.iter().enumerate() {
            let row = sqlx::query_as::<_, ApiKeyRow>(&sql)
                .bind(digest)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(row) = row {
                return Ok(Some((row, at)));
            }
        }
        Ok(None)
    }

    /// Records a use (at most once a minute per key) and, after a secret rotation,
    /// stores the key's digest under the current secret.
    pub async fn touch_api_key(
        &self,
        id: &str,
        rehashed: Option<(&str, &str)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer().await?;
        if let Some((digest, kid)) = rehashed {
            sqlx::query("UPDATE api_keys SET digest = $2, digest_kid = $3 WHERE id = $1")
                .bind(id)
                .bind(digest)
                .bind(kid)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - LAST_USE_EVERY_SECS)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Newest first, revoked keys included; `limit + 1` rows.
    pub async fn list_api_keys(
        &self,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<ApiKeyRow>, StoreError> {
        Ok(sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {COLUMNS} FROM api_keys \
             WHERE ($1 IS NULL OR created_at < $1 OR (created_at = $1 AND id < $2)) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(after.map(|c| c.key))
        .bind(after.map(|c| c.id.as_str()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    /// Revokes a key that is not revoked yet. `NotFound` otherwise.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(None).await?;
        let name: Option<String> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING name",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(name) = name else {
            return Err(StoreError::NotFound);
        };
        record(
            &mut tx,
            &audit.about(id).details(serde_json::json!({"name": name})),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
