//! Thin handlers: parse the input, call the store and the paywall, shape the answer.

pub mod admin_accounts;
pub mod admin_articles;
pub mod admin_integrations;
pub mod articles;
pub mod auth;
pub mod billing;
pub mod extract;
pub mod health;
pub mod me;
pub mod openapi;
pub mod table;
pub mod views;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, HttpResponse, Resource};

use crate::error::{ApiError, ApiResult};
use extract::{BodyLimit, ARTICLE_BODY_LIMIT};

/// A path whose other methods get 405 `method_not_allowed` with an `Allow` header, and
/// whose requests are held to their deadline (see `deadline`).
fn resource(
    path: &str,
    allow: &str,
) -> Resource<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let allow = HeaderValue::from_str(allow).unwrap_or(HeaderValue::from_static(""));
    web::resource(path)
        .default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                let mut response =
                    actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
                response.headers_mut().insert(header::ALLOW, allow);
                response
            }
        }))
        .wrap(actix_web::middleware::from_fn(deadline))
}

/// The most header bytes (names and values) a request may carry. Browsers send a few
/// kilobytes; the server itself stops at 96 headers.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refused before routing, on every path: TRACE and TRACK (they would echo a request
/// back, credentials included), a control character in the query string, and requests
/// with oversized headers. HEAD on the operational routes goes on as GET.
pub async fn request_hygiene(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let method = req.method().as_str();
    let refusal = if method.eq_ignore_ascii_case("TRACE") || method.eq_ignore_ascii_case("TRACK") {
        Some(ApiError::MethodNotAllowed)
    } else if query_has_control(req.query_string()) {
        Some(ApiError::BadRequest(
            "a query parameter holds a control character (such as %00)".into(),
        ))
    } else {
        let header_bytes: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        (header_bytes > MAX_HEADER_BYTES).then_some(ApiError::HeadersTooLarge(MAX_HEADER_BYTES))
    };
    if let Some(error) = refusal {
        let response = actix_web::ResponseError::error_response(&error);
        return Ok(req.into_response(response).map_into_right_body());
    }
    // Health checks and monitors often probe with HEAD: the operational routes answer
    // it as GET, and the server sends the headers without the body. (Article reads do
    // not: a HEAD would spend a meter credit for nothing.)
    if req.method() == actix_web::http::Method::HEAD && table::head_as_get(req.path()) {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Whether a query string, once percent-decoded, holds a control character (C0, DEL or
/// C1, NUL included). No parameter of the service means anything with one, and a NUL
/// would reach SQL `LIKE` patterns as a wildcard on one backend and an error on the other.
pub fn query_has_control(query: &str) -> bool {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    if !query.contains('%') && !query.bytes().any(|b| b.is_ascii_control()) {
        return false;
    }
    let bytes = query.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                decoded.push(high << 4 | low);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded)
        .chars()
        .any(char::is_control)
}

/// Request headers a page on an allowed origin may send, and answer headers it may read.
const CORS_REQUEST_HEADERS: &str = "Authorization, Content-Type, Paywall-Meter, X-Request-Id";
const CORS_EXPOSED_HEADERS: &str = "Paywall-Meter, Retry-After, X-Request-Id, Location";
const CORS_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// CORS for exactly the origins of `PAYWALL_CORS_ORIGINS`, with credentials: their
/// preflights are answered 204 before routing, and their answers carry the grant. Any
/// other origin gets no CORS header at all, so a browser keeps the answer from its page
/// (a preflight from it falls through to routing, which does not allow OPTIONS).
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req
        .app_data::<web::Data<crate::state::AppState>>()
        .filter(|state| !state.settings.cors_origins.is_empty())
        .cloned()
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let configured = &state.settings.cors_origins;
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|origin| configured.iter().any(|o| o.eq_ignore_ascii_case(origin)))
        .and_then(|origin| HeaderValue::from_str(origin).ok());
    let preflight = req.method() == actix_web::http::Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (Some(origin), true) = (&origin, preflight) {
        let response = HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, CORS_METHODS))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, CORS_REQUEST_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
            .insert_header((header::VARY, "Origin"))
            .finish();
        return Ok(req.into_response(response).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    // Whichever origin asked, a shared cache must keep answers per origin.
    let vary = match headers.get(header::VARY).and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}, Origin"),
        None => "Origin".to_string(),
    };
    if let Ok(vary) = HeaderValue::from_str(&vary) {
        headers.insert(header::VARY, vary);
    }
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(CORS_EXPOSED_HEADERS),
        );
    }
    Ok(response.map_into_left_body())
}

/// A request id we accept from a proxy: short, and only characters that cannot break a
/// log line or a header.
fn usable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Gives every request an id (the caller's `X-Request-Id` when usable, else a new
/// UUIDv7) carried by every log line written while serving it and sent back in the
/// answer; logs one line per request with its route pattern (never the path, which can
/// hold slugs and gift tokens), status and time; and counts it for /metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method);
    let started = std::time::Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let elapsed = started.elapsed();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    span.in_scope(|| {
        tracing::info!(status, route = %route, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "served");
    });
    crate::metrics::request(&method, route, status, elapsed.as_secs_f64());
    Ok(response)
}

/// Answers 503 `unavailable` for a request still unanswered at its deadline
/// (`PAYWALL_REQUEST_TIMEOUT_SECS`), dropping the work in flight: a database that stops
/// answering (frozen, or cut off without a reset) holds no reader and no worker for
/// ever, whatever step of the request was waiting on it.
pub async fn deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map_or(std::time::Duration::from_secs(10), |state| {
            std::time::Duration::from_secs(state.settings.request_timeout_secs)
        });
    // Routing to this resource is done, so the request may be shared now.
    let request = req.request().clone();
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(answered) => answered.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            tracing::warn!(
                limit_secs = limit.as_secs(),
                "a request reached its deadline"
            );
            let error = ApiError::Unavailable("the request took too long; try again shortly");
            let response = actix_web::ResponseError::error_response(&error);
            Ok(ServiceResponse::new(request, response))
        }
    }
}

/// Headers for every answer: no sniffing, no referrer, no framing, and a content
/// security policy that lets nothing load (the service serves no pages).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
}

pub async fn not_found() -> ApiResult<HttpResponse> {
    Err(ApiError::NotFound("there is nothing at this path"))
}

/// Headers for every `/v1` answer: they depend on the caller's token, and may carry
/// account data or full text, so no shared cache may keep them.
fn caller_dependent() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CACHE_CONTROL, "private, no-store"))
        .add((header::VARY, "Authorization, Cookie"))
}

/// Registers every endpoint of the route table (see `table`): the operational routes,
/// then `/v1` in the table's order, each path with its `Allow` answer for other methods.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut v1 = web::scope("/v1").wrap(caller_dependent());
    for declared in table::RESOURCES.iter() {
        let path = declared.path.as_str();
        match declared.face {
            table::Face::Operations => {
                let mut served = resource(path, &declared.allow);
                for route in declared.routes() {
                    served = served.route(route);
                }
                cfg.service(served);
            }
            face => {
                let inner = path.strip_prefix("/v1").unwrap_or(path);
                let mut served = resource(inner, &declared.allow);
                if matches!(face, table::Face::ArticleWrites | table::Face::Webhooks) {
                    served = served.app_data(BodyLimit(ARTICLE_BODY_LIMIT));
                }
                if !declared.key_scopes.0.is_empty() {
                    served = served.app_data(declared.key_scopes.clone());
                }
                for route in declared.routes() {
                    served = served.route(route);
                }
                v1 = v1.service(served);
            }
        }
    }
    cfg.service(v1);
}

#[cfg(test)]
mod tests {
    use super::query_has_control;
    use proptest::prelude::*;

    #[test]
    fn control_characters_in_queries() {
        for bad in [
            "q=%00",
            "q=a%0Ab",
            "q=%7f",
            "q=%C2%85",
            "q=%c2%9f",
            "a=1&q=x%09",
        ] {
            assert!(query_has_control(bad), "{bad}");
        }
        for good in [
            "",
            "q=ada",
            "q=zo%C3%A9",
            "q=100%25",
            "q=%",
            "q=%zz",
            "q=a+b",
            "limit=5&cursor=abc",
        ] {
            assert!(!query_has_control(good), "{good}");
        }
    }

    proptest! {
        #[test]
        fn any_query_is_checked_without_panic(query in ".{0,64}") {
            let _ = query_has_control(&query);
        }
    }
}
