//! Reading seats: the rows of `seats` and the one transaction that claims one (see
//! `paywall::seats` for the rules). Claims of one account are serialized: by an
//! advisory lock on the account on PostgreSQL (claims of other accounts, and reads, do
//! not wait), by the write lock on SQLite.

use super::{Store, StoreError};
use crate::paywall::seats::{self, Claim, SeatRow};

/// A claim to decide and write.
pub struct SeatClaim<'a> {
    pub account_id: &'a str,
    pub session_id: &'a str,
    /// The plan's seats, at least one.
    pub seats: u32,
    pub now: i64,
    pub hold_secs: i64,
    /// "Continue reading here": take the seat held longest when none is free.
    pub take_over: bool,
}

/// A seat held now, for the account's owner and its admins.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldSeat {
    pub slot: i64,
    pub session_id: String,
    pub held_since: i64,
    pub held_until: i64,
    pub user_agent: Option<String>,
}

/// Whether an account reads under seats, as its admin sees it.
#[derive(Debug, Clone, Copy)]
pub struct AccountSeats {
    /// The plan's seats while a subscription runs (0: unlimited).
    pub seats: Option<u32>,
    /// A subscriber who is not staff, on a plan of limited seats.
    pub seated: bool,
}

#[derive(sqlx::FromRow)]
struct AccountPlan {
    #[sqlx(try_from = "String")]
    role: crate::domain::Role,
    subscription_plan: Option<String>,
    subscription_expires_at: Option<i64>,
    seats: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    slot: i64,
    session_id: String,
    held_since: i64,
    held_until: i64,
    session_live: i64,
}

impl Store {
    /// Decides a claim from the account's seats as they stand, and writes it: a
    /// refreshed or new lease until `paywall::seats::lease_until`. A take-over from
    /// another session tells every instance (the sessions version), so that the
    /// displaced session's next request, wherever it lands, sees it.
    pub async fn claim_seat(&self, claim: &SeatClaim<'_>) -> Result<Claim, StoreError> {
        let mut tx = self
            .begin_write(Some(&format!("seats:{}", claim.account_id)))
            .await?;
        let rows: Vec<SeatRow> = sqlx::query_as::<_, Row>(
            "SELECT st.slot, st.session_id, st.held_since, st.held_until, \
             CASE WHEN s.revoked_at IS NULL AND s.expires_at > $2 THEN 1 ELSE 0 END AS session_live \
             FROM seats st JOIN sessions s ON s.id = st.session_id WHERE st.account_id = $1",
        )
        .bind(claim.account_id)
        .bind(claim.now)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|row| SeatRow {
            slot: u32::try_from(row.slot).unwrap_or(u32::MAX),
            session_id: row.session_id,
            held_since: row.held_since,
            held_until: row.held_until,
            session_live: row.session_live != 0,
        })
        .collect();
        let decided = seats::claim(
            &rows,
            claim.session_id,
            claim.seats,
            claim.now,
            claim.take_over,
        );
        let (slot, held_since) = match &decided {
            Claim::Refused { .. } => return Ok(decided),
            Claim::Refresh { slot, held_since } => (*slot, *held_since),
            Claim::Take { slot, .. } => (*slot, claim.now),
        };
        // The seat's old row, this session's row on another seat, and rows past the
        // plan's seats give way to the new lease.
        sqlx::query(
            "DELETE FROM seats WHERE account_id = $1 AND (slot = $2 OR slot >= $3 OR session_id = $4)",
        )
        .bind(claim.account_id)
        .bind(i64::from(slot))
        .bind(i64::from(claim.seats.max(1)))
        .bind(claim.session_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO seats (account_id, slot, session_id, held_since, held_until) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(claim.account_id)
        .bind(i64::from(slot))
        .bind(claim.session_id)
        .bind(held_since)
        .bind(seats::lease_until(claim.now, claim.hold_secs))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if matches!(
            decided,
            Claim::Take {
                displaced: Some(_),
                ..
            }
        ) {
            self.sessions_changed().await?;
        }
        Ok(decided)
    }

    /// The seats of an account held at `now` on a plan of `seats`, in slot order.
    pub async fn held_seats(
        &self,
        account_id: &str,
        seats: u32,
        now: i64,
    ) -> Result<Vec<HeldSeat>, StoreError> {
        Ok(sqlx::query_as::<_, HeldSeat>(
            "SELECT st.slot, st.session_id, st.held_since, st.held_until, s.user_agent \
             FROM seats st JOIN sessions s ON s.id = st.session_id \
             WHERE st.account_id = $1 AND st.slot < $2 AND st.held_until > $3 \
             AND s.revoked_at IS NULL AND s.expires_at > $3 ORDER BY st.slot",
        )
        .bind(account_id)
        .bind(i64::from(seats))
        .bind(now)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    /// Whether the account reads under seats, and how many; none if there is no such
    /// account.
    pub async fn account_seats(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<Option<AccountSeats>, StoreError> {
        let row: Option<AccountPlan> = sqlx::query_as(
            "SELECT a.role, a.subscription_plan, a.subscription_expires_at, COALESCE(p.seats, 1) AS seats \
             FROM accounts a LEFT JOIN plans p ON p.id = a.subscription_plan WHERE a.id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(row.map(|row| {
            let running = row.subscription_plan.is_some()
                && row.subscription_expires_at.is_none_or(|at| at > now);
            let seats = running.then(|| u32::try_from(row.seats.max(0)).unwrap_or(u32::MAX));
            let reader = crate::paywall::ReaderKind::Account {
                role: row.role,
                subscription: if running {
                    crate::paywall::SubscriptionState::Active
                } else {
                    crate::paywall::SubscriptionState::Never
                },
            };
            AccountSeats {
                seats,
                seated: seats.is_some_and(|n| crate::paywall::access::reads_under_seats(reader, n)),
            }
        }))
    }
}
