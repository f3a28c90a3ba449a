use super::accounts::{insert_reset, revoke_all_sessions, spend_resets};
use super::audit::{record, AuditEntry};
use super::{Store, StoreError};

impl Store {
    /// Stores a reset token's digest for an account. `NotFound` if the account is gone.
    pub async fn create_password_reset(
        &self,
        account_id: &str,
        token_hash: &str,
        expires_at: i64,
        audit: Option<&AuditEntry>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(None).await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        insert_reset(&mut tx, account_id, token_hash, now, expires_at).await?;
        if let Some(entry) = audit {
            record(&mut tx, entry, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Spends a reset token: sets the new password hash, spends every other outstanding
    /// token of the account and ends all its sessions, in one transaction. Returns the
    /// account id, or None for an unknown, used or expired token.
    pub async fn consume_password_reset(
        &self,
        token_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let account_id: Option<String> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING account_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(account_id) = account_id else {
            return Ok(None);
        };
        spend_resets(&mut tx, &account_id, now).await?;
        sqlx::query("UPDATE accounts SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(&account_id)
            .bind(new_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        revoke_all_sessions(&mut tx, &account_id, None, now).await?;
        tx.commit().await?;
        self.sessions_changed().await?;
        Ok(Some(account_id))
    }
}

impl Store {
    /// The account a reset token would open, if the token is unused and unexpired.
    pub async fn password_reset_account(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<super::AccountRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM accounts WHERE id = \
             (SELECT account_id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2)",
            super::accounts::ACCOUNT_COLUMNS
        );
        Ok(sqlx::query_as::<_, super::AccountRow>(&sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *self.reader().await?)
            .await?)
    }
}
