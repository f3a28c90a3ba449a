//! Creating an account: one rule for every way in (registration, an admin's
//! `POST /v1/admin/accounts`, `paywall create-admin` and `PAYWALL_ADMIN_EMAIL` at start).
//! The email is normalized, the display name and the password checked (a weak password
//! is refused with the words a guesser would try first), a taken address is refused
//! before any Argon2 work, and the account, its subscription, its first reset link and
//! its audit entry are written in one transaction.

use crate::auth::{tokens, PasswordHasher};
use crate::domain::{parse_display_name, Email, Password, Role};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;
use crate::store::{AccountRow, AuditEntry, NewAccount, Store, StoreError, Subscription};

/// How long a password-reset link lasts.
pub const RESET_TTL_SECS: i64 = 3_600;

/// What the face asks for, as the request gave it.
pub struct NewAccountRequest<'a> {
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    /// None: no password yet (an admin's account for someone else, with a reset link).
    pub password: Option<String>,
    pub role: Role,
    pub subscription: Option<Subscription>,
    /// Make a first password-reset link under this base (only without a password).
    pub reset_link_base: Option<(&'a str, bool)>,
    /// Who is making it, for the audit log; none for registration and start-up.
    pub audit: Option<AuditEntry>,
    pub now: i64,
}

pub struct CreatedAccount {
    pub row: AccountRow,
    pub reset_link: Option<ResetLink>,
}

/// A password-reset link: the token goes to the reader once, only its digest is kept.
pub struct ResetLink {
    pub token: String,
    pub digest: String,
    pub url: String,
    pub expires_at: i64,
}

impl ResetLink {
    /// The link points at the reset page: the site's own (`/reset-password/{token}`)
    /// when it is on, else the publisher's (`/reset-password?token=`), which posts the
    /// token and the new password to `POST /v1/auth/password-reset`.
    pub fn new(public_base: &str, site: bool, now: i64) -> Self {
        let (token, digest) = tokens::new_opaque_token();
        ResetLink {
            url: if site {
                format!("{public_base}/reset-password/{token}")
            } else {
                format!("{public_base}/reset-password?token={token}")
            },
            token,
            digest,
            expires_at: now + RESET_TTL_SECS,
        }
    }
}

/// A reader registers themselves from `address`: 403 `registration_closed` when
/// registration is closed, 429 once the address's hourly allowance is spent (both
/// before the request's body is looked at, so a refused sign-up costs nothing), then
/// `create` as a reader. `body` gives the email, display name and password as sent.
pub async fn register(
    state: &AppState,
    address: std::net::IpAddr,
    now: i64,
    body: impl FnOnce() -> ApiResult<(String, Option<String>, String)>,
) -> ApiResult<CreatedAccount> {
    if !state.settings.registration_open {
        return Err(ApiError::RegistrationClosed);
    }
    state
        .throttle
        .signup_or_reset(address)
        .map_err(crate::app::sessions::too_many)?;
    let (email, display_name, password) = body()?;
    create(
        &state.store,
        &state.hasher,
        NewAccountRequest {
            email: &email,
            display_name: display_name.as_deref(),
            password: Some(password),
            role: Role::Reader,
            subscription: None,
            reset_link_base: None,
            audit: None,
            now,
        },
        Vec::new(),
    )
    .await
}

/// Creates the account. `errors` holds what the face found wrong with its own fields
/// (reported together with these checks'); 422 `validation_failed` with all of them,
/// 409 `email_taken` for an address already used.
pub async fn create(
    store: &Store,
    hasher: &PasswordHasher,
    request: NewAccountRequest<'_>,
    mut errors: Vec<FieldError>,
) -> ApiResult<CreatedAccount> {
    let email = Email::parse(request.email)
        .map_err(|m| errors.push(FieldError::new("email", m)))
        .ok();
    let display_name = parse_display_name(request.display_name)
        .map_err(|m| errors.push(FieldError::new("display_name", m)))
        .ok()
        .flatten();
    let password = match request.password {
        None => None,
        Some(raw) => {
            let context = password_context(
                email.as_ref().map_or("", |e| e.as_str()),
                display_name.as_deref(),
            );
            match new_password(raw, context).await {
                Ok(password) => Some(password),
                Err(ApiError::Validation(mut more)) => {
                    errors.append(&mut more);
                    None
                }
                Err(other) => return Err(other),
            }
        }
    };
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    // Checked before hashing so a taken address costs no Argon2 work; the unique key
    // still decides a race between two registrations.
    if store.account_by_email(email.as_str()).await?.is_some() {
        return Err(ApiError::EmailTaken);
    }
    let hash = match password {
        Some(password) => Some(hasher.hash(password).await?),
        None => None,
    };
    let reset_link = request
        .reset_link_base
        .filter(|_| hash.is_none())
        .map(|(base, site)| ResetLink::new(base, site, request.now));
    let audit = request.audit.map(|entry| {
        entry.details(serde_json::json!({
            "email": email.as_str(),
            "role": request.role.as_str(),
            "subscription": request.subscription.as_ref().map(|s| serde_json::json!({
                "plan": s.plan,
                "expires_at": s.expires_at.map(crate::domain::rfc3339),
            })),
            "password_set": hash.is_some(),
        }))
    });
    let row = store
        .create_account(
            &NewAccount {
                email: email.as_str(),
                display_name: display_name.as_deref(),
                password_hash: hash.as_deref(),
                role: request.role,
                now: request.now,
            },
            request.subscription.as_ref(),
            reset_link
                .as_ref()
                .map(|l| (l.digest.as_str(), l.expires_at)),
            audit.as_ref(),
        )
        .await
        .map_err(email_conflict)?;
    Ok(CreatedAccount { row, reset_link })
}

/// A unique-key conflict on the email is `email_taken`; anything else as usual.
pub fn email_conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict => ApiError::EmailTaken,
        other => other.into(),
    }
}

/// Words a guesser would try first for this account: parts of its email and name.
pub fn password_context(email: &str, display_name: Option<&str>) -> Vec<String> {
    let mut words: Vec<&str> = email.split(['@', '.', '+', '-', '_']).collect();
    if let Some(name) = display_name {
        words.extend(name.split_whitespace());
    }
    words.retain(|w| !w.is_empty());
    words.into_iter().map(str::to_string).collect()
}

/// Checks a new password on the blocking pool: strength estimation is CPU work.
pub async fn new_password(raw: String, context: Vec<String>) -> ApiResult<Password> {
    tokio::task::spawn_blocking(move || {
        let context: Vec<&str> = context.iter().map(String::as_str).collect();
        Password::parse_new(&raw, &context)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|message| ApiError::validation("password", message))
}
