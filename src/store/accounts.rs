use super::{conflict_or, Store, StoreError};

/// An account as stored. `password_hash` never leaves the service.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub role: String,
    pub status: String,
    pub subscription_plan: Option<String>,
    pub subscription_started_at: Option<i64>,
    pub subscription_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

pub struct NewAccount<'a> {
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub role: &'a str,
    pub now: i64,
}

const ACCOUNT_COLUMNS: &str = "id, email, display_name, password_hash, role, status, \
    subscription_plan, subscription_started_at, subscription_expires_at, \
    created_at, updated_at, last_login_at";

impl Store {
    /// Creates an active account with no subscription. `Conflict` if the email is taken.
    pub async fn insert_account(&self, new: &NewAccount<'_>) -> Result<AccountRow, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let sql = format!(
            "INSERT INTO accounts (id, email, display_name, password_hash, role, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) RETURNING {ACCOUNT_COLUMNS}"
        );
        sqlx::query_as::<_, AccountRow>(&sql)
            .bind(&id)
            .bind(new.email)
            .bind(new.display_name)
            .bind(new.password_hash)
            .bind(new.role)
            .bind(new.now)
            .fetch_one(&self.write)
            .await
            .map_err(conflict_or)
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<AccountRow>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1");
        Ok(sqlx::query_as::<_, AccountRow>(&sql)
            .bind(email)
            .fetch_optional(&self.read)
            .await?)
    }

    pub async fn account_by_id(&self, id: &str) -> Result<Option<AccountRow>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        Ok(sqlx::query_as::<_, AccountRow>(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    pub async fn active_admin_exists(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM accounts WHERE role = 'admin' AND status = 'active' LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        Ok(found.is_some())
    }

    /// Grants or replaces a subscription. `expires_at` None means no end.
    pub async fn set_subscription(
        &self,
        account_id: &str,
        plan: &str,
        started_at: i64,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET subscription_plan = $2, subscription_started_at = $3, \
             subscription_expires_at = $4, updated_at = $3 WHERE id = $1",
        )
        .bind(account_id)
        .bind(plan)
        .bind(started_at)
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_role(
        &self,
        account_id: &str,
        role: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE accounts SET role = $2, updated_at = $3 WHERE id = $1")
            .bind(account_id)
            .bind(role)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_status(
        &self,
        account_id: &str,
        status: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE accounts SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(account_id)
            .bind(status)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
