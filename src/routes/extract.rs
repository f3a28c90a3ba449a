//! Request parsing with the contract's errors: JSON bodies (415, 413, 400, 422) and
//! list queries (400).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult, FieldError};
use crate::store::Cursor;

/// The largest request body a route accepts; set per scope with `app_data`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;
pub const ARTICLE_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body, read within the route's limit and parsed strictly. Extraction
/// itself never fails: the handler takes the body with `into_inner` after its own
/// authentication and role checks, so a caller without the right to a route learns
/// 401 or 403, never what is wrong with the body.
pub struct ApiJson<T>(Result<T, ApiError>);

impl<T> ApiJson<T> {
    pub fn into_inner(self) -> ApiResult<T> {
        self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = read_json::<T>(req, payload);
        Box::pin(async move { Ok(ApiJson(read.await)) })
    }
}

fn read_json<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
) -> Pin<Box<dyn Future<Output = ApiResult<T>>>> {
    {
        let limit = req
            .app_data::<BodyLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |limit| limit.0);
        let json = is_json(req);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|len| len > limit) {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let body = read_within(&mut payload, limit, declared.unwrap_or(0)).await?;
            parse_json(&body)
        })
    }
}

/// The whole body, refused with 413 once it passes `limit` bytes.
async fn read_within(payload: &mut Payload, limit: usize, expected: usize) -> ApiResult<BytesMut> {
    let mut body = BytesMut::with_capacity(expected.min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request body as sent, byte for byte (a signed webhook is checked over exactly
/// these bytes), read within the route's limit. Like `ApiJson`, taking it fails only in
/// the handler.
pub struct RawBody(Result<actix_web::web::Bytes, ApiError>);

impl RawBody {
    pub fn into_inner(self) -> ApiResult<actix_web::web::Bytes> {
        self.0
    }
}

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<BodyLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |limit| limit.0);
        let mut payload = payload.take();
        Box::pin(async move {
            let read = read_within(&mut payload, limit, 0).await;
            Ok(RawBody(read.map(BytesMut::freeze)))
        })
    }
}

/// 400 for text that is not JSON at all; 422, naming the field, for JSON that does not
/// fit `T` (missing, unknown, wrongly typed or out-of-range fields).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // JSON is UTF-8 text (RFC 8259); serde would only notice bad bytes inside a string
    // it keeps, and then as a 422 for that field.
    if simdutf8::basic::from_utf8(bytes).is_err() {
        return Err(ApiError::BadRequest(
            "the request body is not valid JSON: it is not UTF-8 text".into(),
        ));
    }
    if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::BadRequest(format!(
            "the request body is not valid JSON: {}",
            strip_position(&error.to_string())
        )));
    }
    // serde would also read a struct from an array of its fields in order; the
    // contract's bodies are objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::validation("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = strip_position(&error.inner().to_string());
        ApiError::Validation(vec![field_error(&path, &message)])
    })
}

/// serde's messages end in " at line 1 column 9", which says nothing to an API client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

fn field_error(path: &str, message: &str) -> FieldError {
    let parent = if path == "." { "" } else { path };
    let join = |name: &str| {
        if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        }
    };
    if let Some(rest) = message.strip_prefix("missing field ") {
        let name = backticked(rest).unwrap_or("");
        return FieldError::new(join(name), "is required");
    }
    if message.starts_with("unknown field ") {
        // The path already ends with the unknown field's name.
        return FieldError::new(parent, "is not a field of this request");
    }
    FieldError::new(if parent.is_empty() { "body" } else { parent }, message)
}

pub use crate::domain::nullable;

/// A query parameter's value, trimmed; absent or blank is None.
pub fn query_value(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A query parameter with a closed set of values: absent is none, but present and
/// blank (`?status=`) is a bad value like any other, as the API document says.
pub fn query_choice(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim)
}

/// `?limit=`: 1 to 100, default 20.
pub fn page_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    match raw {
        None => Ok(20),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest("limit must be a whole number from 1 to 100".into())
            }),
    }
}

/// `?cursor=`: opaque, from a previous page.
pub fn page_cursor(raw: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) => Cursor::decode(raw)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("cursor is not one this service issued".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        count: Option<u8>,
    }

    fn problem(bytes: &str) -> ApiError {
        parse_json::<Body>(bytes.as_bytes()).unwrap_err()
    }

    #[test]
    fn not_json_is_a_bad_request() {
        for text in ["", "{", "email=x", "{\"email\": }"] {
            assert_eq!(problem(text).code(), "invalid_request", "{text:?}");
        }
        for bytes in [
            &b"{\"email\": \"a\xff\"}"[..],
            b"{\"email\": \"\xc3\"}",
            b"\xef\xbb",
        ] {
            let error = parse_json::<Body>(bytes).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{bytes:?}");
        }
    }

    #[test]
    fn json_of_the_wrong_shape_names_the_field() {
        let cases = [
            ("{}", "email", "is required"),
            (
                r#"{"email": "a", "role": "admin"}"#,
                "role",
                "is not a field of this request",
            ),
            (
                r#"{"email": 5}"#,
                "email",
                "invalid type: integer `5`, expected a string",
            ),
            (
                r#"{"email": "a", "count": 300}"#,
                "count",
                "invalid value: integer `300`, expected u8",
            ),
        ];
        for (text, field, message) in cases {
            match problem(text) {
                ApiError::Validation(errors) => {
                    assert_eq!(errors, vec![FieldError::new(field, message)], "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        match problem("[1]") {
            ApiError::Validation(errors) => assert_eq!(errors[0].field, "body"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits() {
        assert_eq!(page_limit(None).unwrap(), 20);
        assert_eq!(page_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(page_limit(Some(bad)).is_err(), "{bad}");
        }
        assert!(page_cursor(Some("garbage")).is_err());
    }
}
