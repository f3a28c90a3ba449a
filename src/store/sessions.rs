use super::accounts::revoke_all_sessions;
use super::audit::{record, AuditEntry};
use super::{AccountRow, Store, StoreError};
use crate::domain::{AccountStatus, Role};

/// A live session as its owner sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub user_agent: Option<String>,
}

/// What a request with an access token needs to know about its session, read fresh so
/// that revocation, suspension, role and subscription changes apply at once.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SessionState {
    pub account_id: String,
    pub revoked_at: Option<i64>,
    pub expires_at: i64,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[sqlx(try_from = "String")]
    pub status: AccountStatus,
    pub subscription_plan: Option<String>,
    pub subscription_expires_at: Option<i64>,
    /// The seats of the subscription's plan (0: unlimited; 1 for a plan not defined).
    pub plan_seats: i64,
}

#[derive(sqlx::FromRow)]
struct PresentedToken {
    session_id: String,
    token_expires: i64,
    used_at: Option<i64>,
    session_expires: i64,
    revoked_at: Option<i64>,
}

pub enum RefreshOutcome {
    /// The token was current: it is now used, and the new one replaces it.
    Rotated {
        session_id: String,
        account: Box<AccountRow>,
    },
    /// The token had been used before: its whole session is now revoked.
    Reused,
    /// Unknown, expired, or its session has ended.
    Invalid,
}

pub struct NewSession<'a> {
    pub account_id: &'a str,
    pub user_agent: Option<&'a str>,
    pub refresh_hash: &'a str,
    pub now: i64,
    /// The absolute end of the session.
    pub expires_at: i64,
    /// How long a refresh token lasts unused (never past the session's end).
    pub idle_secs: i64,
}

impl Store {
    /// Opens a session with its first refresh token and records the sign-in.
    pub async fn create_session(&self, new: &NewSession<'_>) -> Result<String, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.begin_write(None).await?;
        sqlx::query(
            "INSERT INTO sessions (id, account_id, created_at, last_seen_at, expires_at, user_agent) \
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(&id)
        .bind(new.account_id)
        .bind(new.now)
        .bind(new.expires_at)
        .bind(new.user_agent)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(new.refresh_hash)
        .bind(&id)
        .bind(new.now)
        .bind((new.now + new.idle_secs).min(new.expires_at))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE accounts SET last_login_at = $2 WHERE id = $1")
            .bind(new.account_id)
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The session and its account as they stand in the database (the engine keeps
    /// them cached: see `engine::Engine::session_state`).
    pub async fn read_session_state(
        &self,
        session_id: &str,
    ) -> Result<Option<SessionState>, StoreError> {
        self.check_reachable()?;
        Ok(sqlx::query_as::<_, SessionState>(
            "SELECT s.account_id, s.revoked_at, s.expires_at, a.role, a.status, \
             a.subscription_plan, a.subscription_expires_at, COALESCE(p.seats, 1) AS plan_seats \
             FROM sessions s JOIN accounts a ON a.id = s.account_id \
             LEFT JOIN plans p ON p.id = a.subscription_plan WHERE s.id = $1",
        )
        .bind(session_id)
        .fetch_optional(&mut *self.reader().await?)
        .await?)
    }

    /// Spends a refresh token and stores its successor, in one transaction. A token
    /// seen a second time revokes its session (reuse detection).
    pub async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        idle_secs: i64,
        now: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let row: Option<PresentedToken> = sqlx::query_as(
            "SELECT t.session_id, t.expires_at AS token_expires, t.used_at, \
             s.expires_at AS session_expires, s.revoked_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
        )
        .bind(presented_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(PresentedToken {
            session_id,
            token_expires,
            used_at,
            session_expires,
            revoked_at,
        }) = row
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        if used_at.is_some() {
            sqlx::query("UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(&session_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            self.sessions_changed().await?;
            return Ok(RefreshOutcome::Reused);
        }
        if revoked_at.is_some() || token_expires <= now || session_expires <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1")
            .bind(presented_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(next_hash)
        .bind(&session_id)
        .bind(now)
        .bind((now + idle_secs).min(session_expires))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
            .bind(&session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let account = sqlx::query_as::<_, AccountRow>(
            "SELECT a.id, a.email, a.display_name, a.password_hash, a.role, a.status, \
             a.subscription_plan, a.subscription_started_at, a.subscription_expires_at, \
             a.subscription_source, a.subscription_status, a.created_at, a.updated_at, a.last_login_at \
             FROM accounts a JOIN sessions s ON s.account_id = a.id WHERE s.id = $1",
        )
        .bind(&session_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated {
            session_id,
            account: Box::new(account),
        })
    }

    /// Ends a session; its access and refresh tokens stop working.
    pub async fn revoke_session(&self, session_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
            .bind(session_id)
            .bind(now)
            .execute(&mut *self.writer().await?)
            .await?;
        self.sessions_changed().await?;
        Ok(())
    }

    /// Sessions that are neither revoked nor expired, newest first.
    pub async fn live_sessions(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        Ok(sqlx::query_as::<_, SessionRow>(
            "SELECT id, created_at, last_seen_at, user_agent FROM sessions \
             WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(account_id)
        .bind(now)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    pub async fn live_session_count(&self, account_id: &str, now: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(account_id)
        .bind(now)
        .fetch_one(&mut *self.reader().await?)
        .await?)
    }

    /// Ends every session of an account. `NotFound` if the account is gone.
    pub async fn revoke_account_sessions(
        &self,
        account_id: &str,
        audit: Option<&AuditEntry>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let ended = revoke_all_sessions(&mut tx, account_id, None, now).await?;
        if let Some(entry) = audit {
            let entry = entry
                .clone()
                .details(serde_json::json!({"sessions_ended": ended}));
            record(&mut tx, &entry, now).await?;
        }
        tx.commit().await?;
        self.sessions_changed().await?;
        Ok(ended)
    }
}
