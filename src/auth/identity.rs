//! Turns a request into a `Caller`: anonymous when no token is sent, an account when a
//! valid token of a live session is sent, and a 401 `invalid_token` for anything else,
//! on every route, public ones included.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::api_keys::{is_api_key, Scope};
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
    /// Set when the caller is an API key: `account_id` is then the key's id (the actor of
    /// its audit entries), and the route was checked to be one of its scopes.
    pub api_key: Option<Vec<Scope>>,
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

/// The scopes that open a resource's methods to API keys, as the route table declares
/// them (`security(("api_key" = [...]))`), attached to the resource. A method not
/// listed, or a route without this, is closed to every key.
#[derive(Debug, Clone, Default)]
pub struct KeyScopes(pub Vec<(actix_web::http::Method, Vec<Scope>)>);

impl KeyScopes {
    fn of(req: &HttpRequest) -> &[Scope] {
        req.app_data::<KeyScopes>()
            .and_then(|scopes| {
                scopes
                    .0
                    .iter()
                    .find(|(method, _)| method == req.method())
                    .map(|(_, scopes)| scopes.as_slice())
            })
            .unwrap_or(&[])
    }
}

/// The caller an API key reads as, if it is a key that was made here and not revoked,
/// and one of its scopes opens this route (else 403: keys call only admin routes of
/// their scopes). Its last use is recorded at most once a minute.
async fn resolve_key(
    state: web::Data<AppState>,
    key: String,
    route: Vec<Scope>,
) -> Result<AuthAccount, ApiError> {
    let digests: Vec<(String, String)> = state.key_digests.digests(&key).collect();
    let candidates: Vec<String> = digests.iter().map(|(digest, _)| digest.clone()).collect();
    let (row, matched) = if candidates.is_empty() {
        None
    } else {
        state.store.api_key_by_digest(&candidates).await?
    }
    .ok_or(ApiError::InvalidToken("the API key is not known"))?;
    if row.revoked_at.is_some() {
        return Err(ApiError::InvalidToken("the API key was revoked"));
    }
    let scopes = Scope::split(&row.scopes);
    if !route.iter().any(|scope| scopes.contains(scope)) {
        return Err(ApiError::Forbidden(
            "this API key's scopes do not include this route; keys call only the admin routes of their scopes",
        ));
    }
    let rehashed = (matched > 0).then(|| &digests[0]);
    let now = now_ts();
    if rehashed.is_some() || row.last_used_at.is_none_or(|at| at <= now - 60) {
        let rehashed = rehashed.map(|(digest, kid)| (digest.as_str(), kid.as_str()));
        state.store.touch_api_key(&row.id, rehashed, now).await?;
    }
    Ok(AuthAccount {
        account_id: row.id,
        session_id: String::new(),
        // Only routes of its scopes get this far, and each of those is an admin's.
        role: Role::Admin,
        subscription: SubscriptionState::Never,
        seats: 0,
        api_key: Some(scopes),
    })
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
        api_key: None,
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
                    Presented::Header(token) if is_api_key(&token) => {
                        return Ok(Some((token, state, Some(KeyScopes::of(req).to_vec()))));
                    }
                    Presented::Header(token) => token,
                    Presented::Cookie(token) => {
                        cookie_request_allowed(req, &state)?;
                        token
                    }
                };
                Ok(Some((token, state, None)))
            }
        });
        Box::pin(async move {
            match found? {
                None => Ok(Caller::Anonymous),
                Some((key, state, Some(route))) => {
                    Ok(Caller::Account(resolve_key(state, key, route).await?))
                }
                Some((token, state, None)) => Ok(Caller::Account(resolve(state, token).await?)),
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
