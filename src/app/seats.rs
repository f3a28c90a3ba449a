//! Reading seats, as every face asks for them: the check on a subscriber's gated read
//! (`reading` calls it), "continue reading here", and who is reading now (the reader's
//! sessions, the admin's view of an account). The rules are `paywall::seats`; the
//! engine keeps reads from writing each time (`engine::seats`).

use crate::auth::AuthAccount;
use crate::error::{ApiError, ApiResult};
use crate::paywall::seats::Claim;
use crate::paywall::{SeatVerdict, SubscriptionState};
use crate::state::AppState;
use crate::store::seats::{HeldSeat, SeatClaim};

fn claim_of<'a>(
    account: &'a AuthAccount,
    now: i64,
    hold_secs: i64,
    take_over: bool,
) -> SeatClaim<'a> {
    SeatClaim {
        account_id: &account.account_id,
        session_id: &account.session_id,
        seats: account.seats,
        now,
        hold_secs,
        take_over,
    }
}

/// Whether this session may read gated text now (for a reader `paywall::access::
/// needs_seat` says needs a seat).
pub async fn check(state: &AppState, account: &AuthAccount, now: i64) -> ApiResult<SeatVerdict> {
    let claim = claim_of(account, now, state.settings.seat_hold_secs, false);
    Ok(state.engine.seat(&claim).await?)
}

/// Whether the account reads under seats at all (`paywall::access::reads_under_seats`).
fn seated(account: &AuthAccount) -> bool {
    crate::paywall::access::reads_under_seats(account.reader_kind(), account.seats)
}

/// "Continue reading here": this session takes a seat, from the session that has
/// held one longest when none is free; that session's next gated read is
/// `reading_elsewhere`. Staff and unlimited plans read without seats (nothing to do);
/// an account without a running subscription has no seat to take (403 `forbidden`).
pub async fn continue_here(state: &AppState, account: &AuthAccount, now: i64) -> ApiResult<()> {
    if !account.role.is_staff() && account.subscription != SubscriptionState::Active {
        return Err(ApiError::Forbidden(
            "reading seats come with a subscription, and this account has none running",
        ));
    }
    if !seated(account) {
        return Ok(());
    }
    state
        .throttle
        .seat_take(&account.account_id)
        .map_err(crate::app::sessions::too_many)?;
    let claim = claim_of(account, now, state.settings.seat_hold_secs, true);
    if let Claim::Take {
        displaced: Some(_),
        slot,
    } = state.engine.take_seat(&claim).await?
    {
        tracing::info!(account = %account.account_id, slot, "a reading seat was taken over");
    }
    Ok(())
}

/// An account's seats as they stand: its plan's number (0: unlimited, none without a
/// running subscription) and the seats held now.
pub struct SeatsNow {
    pub seats: Option<u32>,
    pub held: Vec<HeldSeat>,
}

/// The seats of the account behind `session` (for `GET /v1/me/sessions`).
pub async fn of_session(state: &AppState, account: &AuthAccount, now: i64) -> ApiResult<SeatsNow> {
    let seats = (account.subscription == SubscriptionState::Active).then_some(account.seats);
    held(state, &account.account_id, seats, seated(account), now).await
}

/// The seats of any account (for its admins).
pub async fn of_account(state: &AppState, account_id: &str, now: i64) -> ApiResult<SeatsNow> {
    let found = state
        .store
        .account_seats(account_id, now)
        .await?
        .ok_or(ApiError::NotFound("no account has this id"))?;
    held(state, account_id, found.seats, found.seated, now).await
}

async fn held(
    state: &AppState,
    account_id: &str,
    seats: Option<u32>,
    seated: bool,
    now: i64,
) -> ApiResult<SeatsNow> {
    let held = match seats {
        Some(seats) if seated => state.store.held_seats(account_id, seats, now).await?,
        _ => Vec::new(),
    };
    Ok(SeatsNow { seats, held })
}
