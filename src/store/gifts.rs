use super::{Store, StoreError};

/// A gift to record, and the quota it must fit in.
pub struct NewGift<'a> {
    pub gift_id: &'a str,
    pub account_id: &'a str,
    pub article_id: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// Gifts made since this instant count against the quota.
    pub month_start: i64,
    pub limit: u32,
}

impl Store {
    /// Records a gift if the account has made fewer than `limit` since `month_start`:
    /// one conditional insert, under the account's gift lock on PostgreSQL, so two
    /// requests at the edge cannot both pass. Returns false when the quota is spent.
    pub async fn create_gift(&self, gift: &NewGift<'_>) -> Result<bool, StoreError> {
        let mut tx = self
            .begin_write(Some(&format!("gifts:{}", gift.account_id)))
            .await?;
        let done = sqlx::query(
            "INSERT INTO gifts (id, account_id, article_id, created_at, expires_at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT COUNT(*) FROM gifts WHERE account_id = $2 AND created_at >= $6) < $7",
        )
        .bind(gift.gift_id)
        .bind(gift.account_id)
        .bind(gift.article_id)
        .bind(gift.now)
        .bind(gift.expires_at)
        .bind(gift.month_start)
        .bind(i64::from(gift.limit))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The gifts an account made that still open their article, newest first, with
    /// the article's slug and title.
    pub async fn live_gifts(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.slug, a.title, g.expires_at FROM gifts g JOIN articles a ON a.id = g.article_id \
             WHERE g.account_id = $1 AND g.expires_at > $2 ORDER BY g.created_at DESC LIMIT 50",
        )
        .bind(account_id)
        .bind(now)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    /// Deletes gifts that have expired and no longer count towards this month's quota.
    pub async fn prune_gifts(&self, now: i64, month_start: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM gifts WHERE expires_at <= $1 AND created_at < $2")
            .bind(now)
            .bind(month_start)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(done.rows_affected())
    }
}
