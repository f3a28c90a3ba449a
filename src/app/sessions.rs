//! Sessions: signing in with email and password (throttled, the same work and answer
//! whatever is wrong), refreshing a token pair, signing out, and checking a signed-in
//! account's current password. Every face that signs readers in (the JSON routes, the
//! pages to come) calls these.

use std::net::IpAddr;

use crate::auth::password::Verified;
use crate::auth::throttle::{self, Burst, RetryAfter};
use crate::auth::tokens;
use crate::domain::{AccountStatus, Email, Password};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::sessions::NewSession;
use crate::store::{now_ts, AccountRow, AuditEntry, RefreshOutcome};

/// A session's tokens, as handed to the reader.
pub struct SignedIn {
    pub account: AccountRow,
    pub session_id: String,
    pub access_token: String,
    pub refresh_token: String,
    /// When they were issued.
    pub now: i64,
}

/// 429 `rate_limited`, with when to try again.
pub fn too_many(retry: RetryAfter) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: retry.secs(),
    }
}

/// Signs in with an email and a password from `address`: 401 `invalid_credentials`
/// whatever is wrong, 403 `account_suspended`, 429 once the failures of this email from
/// this address (or of this address) reach their limit.
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: String,
    address: IpAddr,
    user_agent: Option<String>,
) -> ApiResult<SignedIn> {
    let parsed = Email::parse(email).ok();
    let throttle_key = parsed.as_ref().map_or_else(
        || email.trim().to_lowercase().chars().take(254).collect(),
        |e| e.as_str().to_string(),
    );
    let keys = throttle::login_keys(&throttle_key, address);
    let keys = [keys[0].as_str(), keys[1].as_str()];
    let window = state.throttle.window_secs();
    let counts = state.store.failure_counts(&keys, window, now_ts()).await?;
    if let Some(retry) = state.throttle.login_blocked(&counts, now_ts()) {
        crate::metrics::login(crate::metrics::Login::Throttled);
        return Err(too_many(retry));
    }
    // Whatever is wrong (address, account, password), the same work is done and the
    // same answer given, so the answer does not tell which accounts exist.
    let account = match &parsed {
        Some(email) => state.store.account_by_email(email.as_str()).await?,
        None => None,
    };
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let verified = match Password::parse_given(&password) {
        Ok(given) => state.hasher.verify(given, stored.clone()).await?,
        Err(_) => Verified::No,
    };
    let (rehash, account) = match (verified, account) {
        (Verified::Yes { rehash }, Some(account)) => (rehash, account),
        (_, account) => {
            let counted = state.store.count_failure(&keys, window, now_ts()).await?;
            let burst = state.throttle.login_burst(&counted);
            if burst != Burst::None {
                record_burst(state, burst, &throttle_key, account.as_ref(), address).await?;
            }
            crate::metrics::login(crate::metrics::Login::InvalidCredentials);
            return Err(ApiError::InvalidCredentials);
        }
    };
    // A success clears the failures of that email from that address only, so an
    // attacker elsewhere cannot lock the owner out and the owner cannot unlock an
    // attacker. Without earlier failures there is nothing to clear and nothing written.
    if counts[0].is_some() {
        state.store.clear_failures(keys[0]).await?;
    }
    if account.status != AccountStatus::Active {
        crate::metrics::login(crate::metrics::Login::Suspended);
        return Err(ApiError::AccountSuspended);
    }
    crate::metrics::login(crate::metrics::Login::Success);
    if rehash {
        rehash_in_background(state, &account, password, stored);
    }
    start_session(state, account, user_agent).await
}

/// Opens a session for `account` with its first token pair (after a sign-in, or for
/// an account just registered, whose password was hashed a moment ago: no second
/// Argon2 run to check it).
pub async fn start_session(
    state: &AppState,
    account: AccountRow,
    user_agent: Option<String>,
) -> ApiResult<SignedIn> {
    let now = now_ts();
    let (refresh_token, refresh_hash) = tokens::new_opaque_token();
    let session_id = state
        .store
        .create_session(&NewSession {
            account_id: &account.id,
            user_agent: user_agent.as_deref(),
            refresh_hash: &refresh_hash,
            now,
            expires_at: now + state.settings.refresh_token_ttl_secs,
            idle_secs: state.settings.session_idle_secs,
        })
        .await?;
    issue(state, account, session_id, refresh_token, now)
}

/// Signs an access token for the session.
fn issue(
    state: &AppState,
    account: AccountRow,
    session_id: String,
    refresh_token: String,
    now: i64,
) -> ApiResult<SignedIn> {
    let access_token = state
        .keys
        .issue(&account.id, &session_id, account.role, now)
        .map_err(ApiError::internal)?;
    Ok(SignedIn {
        account,
        session_id,
        access_token,
        refresh_token,
        now,
    })
}

/// Spends a refresh token for a new pair: 401 `invalid_token` for an unknown, expired
/// or reused one (reuse ends its session), or one whose account is suspended.
pub async fn refresh(state: &AppState, presented: &str) -> ApiResult<SignedIn> {
    if presented.is_empty() || presented.len() > 512 {
        return Err(ApiError::InvalidToken("the refresh token is not valid"));
    }
    let now = now_ts();
    let (next_token, next_hash) = tokens::new_opaque_token();
    let outcome = state
        .store
        .rotate_refresh_token(
            &tokens::opaque_token_digest(presented),
            &next_hash,
            state.settings.session_idle_secs,
            now,
        )
        .await?;
    match outcome {
        RefreshOutcome::Rotated {
            session_id,
            account,
        } => {
            if account.status != AccountStatus::Active {
                state.store.revoke_session(&session_id, now).await?;
                return Err(ApiError::InvalidToken(
                    "the account of this refresh token is suspended",
                ));
            }
            issue(state, *account, session_id, next_token, now)
        }
        RefreshOutcome::Reused => Err(ApiError::InvalidToken(
            "this refresh token was already used; its session has been ended",
        )),
        RefreshOutcome::Invalid => Err(ApiError::InvalidToken(
            "the refresh token is not valid or has expired",
        )),
    }
}

/// Ends one session: its tokens stop working at the next request, on every instance.
pub async fn sign_out(state: &AppState, session_id: &str) -> ApiResult<()> {
    state.store.revoke_session(session_id, now_ts()).await?;
    Ok(())
}

/// Signs an account out everywhere, the session asking included: every session ends
/// at its next request on every instance. `NotFound` when the account is gone.
pub async fn sign_out_everywhere(
    state: &AppState,
    account_id: &str,
) -> Result<(), crate::store::StoreError> {
    state
        .store
        .revoke_account_sessions(account_id, None, now_ts())
        .await?;
    Ok(())
}

/// Checks a signed-in account's current password, the same way sign-in does, within
/// the account's allowance of attempts: 401 `invalid_credentials` when wrong, 429 once
/// the allowance is spent (before any hashing, so a flood never fills the queue).
pub async fn check_current_password(
    state: &AppState,
    account: &AccountRow,
    given: &str,
) -> ApiResult<()> {
    let key = throttle::password_check_key(&account.id);
    let now = now_ts();
    let counted = state
        .store
        .count_failure(&[&key], state.throttle.window_secs(), now)
        .await?;
    if let Some(counted) = counted.first() {
        state
            .throttle
            .password_check(counted, now)
            .map_err(too_many)?;
    }
    let verified = match Password::parse_given(given) {
        Ok(password) => {
            state
                .hasher
                .verify(password, account.password_hash.clone())
                .await?
        }
        Err(_) => Verified::No,
    };
    match verified {
        Verified::Yes { .. } => {
            state.store.clear_failures(&key).await?;
            Ok(())
        }
        Verified::No => Err(ApiError::InvalidCredentials),
    }
}

/// The first failure over a limit is written to the audit log; the ones after it in
/// the same window are the same burst.
async fn record_burst(
    state: &AppState,
    burst: Burst,
    email: &str,
    account: Option<&AccountRow>,
    address: IpAddr,
) -> ApiResult<()> {
    let (scope, limit) = match burst {
        Burst::PerAddress => (
            "client_address",
            state.settings.login_max_failures_per_address,
        ),
        _ => (
            "email_and_client_address",
            state.settings.login_max_failures,
        ),
    };
    let mut details = serde_json::json!({
        "scope": scope,
        "client_address": address.to_string(),
        "failures": limit,
        "window_secs": state.settings.login_window_secs,
    });
    if burst == Burst::PerEmailAndAddress {
        details["email"] = serde_json::Value::String(email.to_string());
    }
    let entry = AuditEntry::new(
        None,
        "login.throttled",
        "account",
        account.map(|a| a.id.as_str()),
    )
    .details(details);
    state.store.record_audit(&entry, now_ts()).await?;
    Ok(())
}

/// Re-makes a weaker (or imported bcrypt) hash at the configured cost after a
/// successful sign-in, without making the reader wait for it.
fn rehash_in_background(
    state: &AppState,
    account: &AccountRow,
    password: String,
    old: Option<String>,
) {
    let (Some(old), Ok(password)) = (old, Password::parse_given(&password)) else {
        return;
    };
    let (hasher, store) = (state.hasher.clone(), state.store.clone());
    let account_id = account.id.clone();
    tokio::spawn(async move {
        let outcome = match hasher.hash(password).await {
            Ok(new) => store
                .upgrade_password_hash(&account_id, &old, &new)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not re-hash a password at the configured cost");
        }
    });
}
