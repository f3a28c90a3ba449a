//! Turns a request into a `Caller`: anonymous when no token is sent, an account when a
//! valid token of a live session is sent, and a 401 `invalid_token` for anything else,
//! on every route, public ones included.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use crate::domain::{AccountStatus, Role};
use crate::error::ApiError;
use crate::paywall::{ReaderKind, SubscriptionState};
use crate::state::AppState;
use crate::store::now_ts;

pub const SESSION_COOKIE: &str = "paywall_session";

/// A signed-in account, as it stands in the database at this request.
#[derive(Debug, Clone)]
pub struct AuthAccount {
    pub account_id: String,
    pub session_id: String,
    pub role: Role,
    pub subscription: SubscriptionState,
    /// The seats of the subscription's plan: how many sessions may read gated text at
    /// once (0: unlimited; 1 for a plan not defined).
    pub seats: u32,
}

impl AuthAccount {
    pub fn reader_kind(&self) -> ReaderKind {
        ReaderKind::Account {
            role: self.role,
            subscription: self.subscription,
        }
    }

    /// 403 unless the account has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("your role does not allow this"))
        }
    }
}

#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    Account(AuthAccount),
}

impl Caller {
    pub fn reader_kind(&self) -> ReaderKind {
        match self {
            Caller::Anonymous => ReaderKind::Anonymous,
            Caller::Account(account) => account.reader_kind(),
        }
    }
}

/// A caller that must be signed in: 401 `unauthorized` without a token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub AuthAccount);

/// The token in an `Authorization` header value: `Bearer` (any case) and a non-empty
/// token. Anything else is an invalid token, never "no token".
pub fn bearer_token(value: &[u8]) -> Result<&str, &'static str> {
    let value =
        std::str::from_utf8(value).map_err(|_| "the Authorization header is not valid text")?;
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("the Authorization header must use the Bearer scheme");
    }
    let token = token.trim();
    if token.is_empty() {
        return Err("the bearer token is empty");
    }
    Ok(token)
}

/// Where a presented token came from: a cookie is sent by the browser on its own, so
/// it needs the cross-site checks of `cookie_request_allowed`; a header does not.
enum Presented {
    Header(String),
    Cookie(String),
}

/// The token from `Authorization: Bearer`, else from the session cookie. Never from the
/// URL: a token in a query string would end up in logs and browser history. Two
/// `Authorization` headers are refused: a proxy and the service could each read another.
fn presented_token(req: &HttpRequest) -> Result<Option<Presented>, ApiError> {
    let mut headers = req.headers().get_all(header::AUTHORIZATION);
    if let Some(value) = headers.next() {
        if headers.next().is_some() {
            return Err(ApiError::InvalidToken(
                "the request carries more than one Authorization header",
            ));
        }
        let token = bearer_token(value.as_bytes()).map_err(ApiError::InvalidToken)?;
        return Ok(Some(Presented::Header(token.to_string())));
    }
    Ok(req
        .cookie(SESSION_COOKIE)
        .map(|cookie| cookie.value().to_string())
        .filter(|value| !value.is_empty())
        .map(Presented::Cookie))
}

/// A browser sends the session cookie with any request to this service, a forged form
/// on another site included. So a request that changes something and is authenticated
/// by the cookie alone must come from this service's own origin or one of
/// `PAYWALL_CORS_ORIGINS`: its `Origin` (else `Referer`) says so, and `Sec-Fetch-Site`,
/// when the browser sends it, must not say the request is cross-site.
fn cookie_request_allowed(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if matches!(
        *req.method(),
        actix_web::http::Method::GET
            | actix_web::http::Method::HEAD
            | actix_web::http::Method::OPTIONS
    ) {
        return Ok(());
    }
    const REFUSED: ApiError = ApiError::Forbidden(
        "a request signed in by the session cookie alone must come from this site's own pages; \
         other clients send the token in an Authorization header",
    );
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = match text(header::ORIGIN) {
        Some(origin) => crate::domain::origin_of(origin),
        None => text(header::REFERER).and_then(crate::domain::origin_of),
    }
    .ok_or(REFUSED)?;
    let own = match &state.settings.public_url {
        Some(url) => crate::domain::origin_of(url),
        None => text(header::HOST).map(|host| {
            format!("{}://{}", req.connection_info().scheme(), host).to_ascii_lowercase()
        }),
    };
    let allowed =
        own.as_deref() == Some(origin.as_str()) || state.settings.cors_origins.contains(&origin);
    let fetch_site_ok = match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        None => true,
        Some(site) => site == b"same-origin" || site == b"same-site",
    };
    if allowed && fetch_site_ok {
        Ok(())
    } else {
        Err(REFUSED)
    }
}

/// The account an access token reads as, if its session is live and its account active.
pub async fn resolve(state: web::Data<AppState>, token: String) -> Result<AuthAccount, ApiError> {
    let claims = state.keys.verify(&token).map_err(ApiError::InvalidToken)?;
    let session = state
        .engine
        .session_state(&claims.sid)
        .await?
        .ok_or(ApiError::InvalidToken(
            "the session of this access token has ended",
        ))?;
    let now = now_ts();
    if session.account_id != claims.sub || session.revoked_at.is_some() || session.expires_at <= now
    {
        return Err(ApiError::InvalidToken(
            "the session of this access token has ended",
        ));
    }
    if session.status != AccountStatus::Active {
        return Err(ApiError::InvalidToken(
            "the account of this access token is suspended",
        ));
    }
    let role = session.role;
    let subscription = match (&session.subscription_plan, session.subscription_expires_at) {
        (None, _) => SubscriptionState::Never,
        (Some(_), Some(expires)) if expires <= now => SubscriptionState::Expired,
        (Some(_), _) => SubscriptionState::Active,
    };
    Ok(AuthAccount {
        account_id: session.account_id,
        session_id: claims.sid,
        role,
        subscription,
        seats: u32::try_from(session.plan_seats.max(0)).unwrap_or(u32::MAX),
    })
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = presented_token(req).and_then(|presented| match presented {
            None => Ok(None),
            Some(presented) => {
                let state = app_state(req)?;
                let token = match presented {
                    Presented::Header(token) => token,
                    Presented::Cookie(token) => {
                        cookie_request_allowed(req, &state)?;
                        token
                    }
                };
                Ok(Some((token, state)))
            }
        });
        Box::pin(async move {
            match found? {
                None => Ok(Caller::Anonymous),
                Some((token, state)) => Ok(Caller::Account(resolve(state, token).await?)),
            }
        })
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            match caller.await? {
                Caller::Anonymous => Err(ApiError::Unauthorized),
                Caller::Account(account) => Ok(Authenticated(account)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;
    use proptest::prelude::*;

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer_token(b"Bearer abc.def.ghi"), Ok("abc.def.ghi"));
        assert_eq!(bearer_token(b"bearer  abc "), Ok("abc"));
        assert!(bearer_token(b"Basic dXNlcjpwYXNz").is_err());
        assert!(bearer_token(b"Bearer").is_err());
        assert!(bearer_token(b"Bearer ").is_err());
        assert!(bearer_token(b"").is_err());
        assert!(bearer_token(b"Bearer \xff\xfe").is_err());
    }

    proptest! {
        // Fuzzing the header parser: never panics; accepts exactly "Bearer <token>".
        #[test]
        fn any_header_value_is_parsed_without_panic(value in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(token) = bearer_token(&value) {
                let text = std::str::from_utf8(&value).unwrap();
                prop_assert!(text.trim_start().to_ascii_lowercase().starts_with("bearer "));
                prop_assert!(!token.is_empty());
                prop_assert!(text.contains(token));
            }
        }

        #[test]
        fn well_formed_headers_give_back_their_token(token in "[A-Za-z0-9._~+/=-]{1,200}", scheme in "(?i)bearer") {
            let value = format!("{scheme} {token}");
            prop_assert_eq!(bearer_token(value.as_bytes()), Ok(token.as_str()));
        }
    }
}
