//! Failure counts in fixed windows, per key (see migration 0006): what the sign-in and
//! current-password throttles decide from, shared by every instance.

use super::{Store, StoreError};

/// A key's count: how many in the window that began at `window_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    pub window_start: i64,
    pub failures: u32,
}

fn count_of((window_start, failures): (i64, i64)) -> FailureCount {
    FailureCount {
        window_start,
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
    }
}

impl Store {
    /// The current counts of `keys`, in order (None: no failure in a live window).
    pub async fn failure_counts(
        &self,
        keys: &[&str],
        window_secs: i64,
        now: i64,
    ) -> Result<Vec<Option<FailureCount>>, StoreError> {
        let placeholders: Vec<String> = (2..keys.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT key, window_start, failures FROM failure_counts \
             WHERE window_start > $1 AND key IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, i64, i64)>(&sql).bind(now - window_secs);
        for key in keys {
            query = query.bind(*key);
        }
        let rows = query.fetch_all(&mut *self.reader().await?).await?;
        Ok(keys
            .iter()
            .map(|key| {
                rows.iter()
                    .find(|(k, _, _)| k == key)
                    .map(|(_, start, failures)| count_of((*start, *failures)))
            })
            .collect())
    }

    /// Adds one to each key's count, starting a new window where the last one ended;
    /// returns the counts after, in order. One transaction, so two instances counting
    /// at once both see the other's failure.
    pub async fn count_failure(
        &self,
        keys: &[&str],
        window_secs: i64,
        now: i64,
    ) -> Result<Vec<FailureCount>, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            let row: (i64, i64) = sqlx::query_as(
                "INSERT INTO failure_counts (key, window_start, failures) VALUES ($1, $2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                 failures = CASE WHEN failure_counts.window_start > $2 - $3 \
                     THEN failure_counts.failures + 1 ELSE 1 END, \
                 window_start = CASE WHEN failure_counts.window_start > $2 - $3 \
                     THEN failure_counts.window_start ELSE $2 END \
                 RETURNING window_start, failures",
            )
            .bind(*key)
            .bind(now)
            .bind(window_secs)
            .fetch_one(&mut *tx)
            .await?;
            counts.push(count_of(row));
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Forgets a key's failures (a success after them).
    pub async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM failure_counts WHERE key = $1")
            .bind(key)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    /// Deletes the counts of windows that have ended.
    pub async fn prune_failures(&self, window_secs: i64, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM failure_counts WHERE window_start <= $1")
            .bind(now - window_secs)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(done.rows_affected())
    }
}
