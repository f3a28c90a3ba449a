//! The one place where errors become HTTP answers: RFC 9457 problem+json with the
//! contract's stable `code`. Handlers return `ApiError`; nothing else picks a status.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// One field-level complaint in a 422 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("this route needs an access token")]
    Unauthorized,
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("the email or password is not correct")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("this account is suspended")]
    AccountSuspended,
    #[error("self-registration is disabled on this service")]
    RegistrationClosed,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("an article with this slug already exists")]
    SlugTaken,
    #[error("{0}")]
    LastAdmin(&'static str),
    #[error("a plan with this id already exists")]
    PlanTaken,
    #[error("{0}")]
    PlanInUse(&'static str),
    /// A webhook delivery whose signature does not hold; the detail says which check failed.
    #[error("{0}")]
    InvalidSignature(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request headers are larger than {0} bytes in all")]
    HeadersTooLarge(usize),
    #[error("request bodies must be sent as Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("too many requests; try again later")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("the database's disk is full: reads go on, and writes resume by themselves once space is freed")]
    StorageFull,
    /// The detail is logged by `internal`, never sent.
    #[error("an internal error occurred")]
    Internal,
}

impl ApiError {
    /// Logs the cause server-side and answers a bare 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::Internal
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn code(&self) -> &'static str {
        self.problem_code().as_str()
    }

    pub fn problem_code(&self) -> ProblemCode {
        match self {
            ApiError::BadRequest(_) => ProblemCode::InvalidRequest,
            ApiError::Unauthorized => ProblemCode::Unauthorized,
            ApiError::InvalidToken(_) => ProblemCode::InvalidToken,
            ApiError::InvalidCredentials => ProblemCode::InvalidCredentials,
            ApiError::Forbidden(_) => ProblemCode::Forbidden,
            ApiError::AccountSuspended => ProblemCode::AccountSuspended,
            ApiError::RegistrationClosed => ProblemCode::RegistrationClosed,
            ApiError::NotFound(_) => ProblemCode::NotFound,
            ApiError::MethodNotAllowed => ProblemCode::MethodNotAllowed,
            ApiError::EmailTaken => ProblemCode::EmailTaken,
            ApiError::SlugTaken => ProblemCode::SlugTaken,
            ApiError::LastAdmin(_) => ProblemCode::LastAdmin,
            ApiError::PlanTaken => ProblemCode::PlanTaken,
            ApiError::PlanInUse(_) => ProblemCode::PlanInUse,
            ApiError::InvalidSignature(_) => ProblemCode::InvalidSignature,
            ApiError::PayloadTooLarge(_) => ProblemCode::PayloadTooLarge,
            ApiError::HeadersTooLarge(_) => ProblemCode::HeadersTooLarge,
            ApiError::UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            ApiError::Validation(_) => ProblemCode::ValidationFailed,
            ApiError::RateLimited { .. } => ProblemCode::RateLimited,
            ApiError::Unavailable(_) => ProblemCode::Unavailable,
            ApiError::StorageFull => ProblemCode::StorageFull,
            ApiError::Internal => ProblemCode::Internal,
        }
    }
}

/// Every stable machine `code` an error answer can carry: a closed set, so that clients
/// (and the OpenAPI document's enum) can match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    InvalidRequest,
    Unauthorized,
    InvalidToken,
    InvalidCredentials,
    Forbidden,
    AccountSuspended,
    RegistrationClosed,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    SlugTaken,
    LastAdmin,
    PlanTaken,
    PlanInUse,
    InvalidSignature,
    PayloadTooLarge,
    HeadersTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    Unavailable,
    StorageFull,
    Internal,
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::InvalidRequest => "invalid_request",
            ProblemCode::Unauthorized => "unauthorized",
            ProblemCode::InvalidToken => "invalid_token",
            ProblemCode::InvalidCredentials => "invalid_credentials",
            ProblemCode::Forbidden => "forbidden",
            ProblemCode::AccountSuspended => "account_suspended",
            ProblemCode::RegistrationClosed => "registration_closed",
            ProblemCode::NotFound => "not_found",
            ProblemCode::MethodNotAllowed => "method_not_allowed",
            ProblemCode::EmailTaken => "email_taken",
            ProblemCode::SlugTaken => "slug_taken",
            ProblemCode::LastAdmin => "last_admin",
            ProblemCode::PlanTaken => "plan_taken",
            ProblemCode::PlanInUse => "plan_in_use",
            ProblemCode::InvalidSignature => "invalid_signature",
            ProblemCode::PayloadTooLarge => "payload_too_large",
            ProblemCode::HeadersTooLarge => "headers_too_large",
            ProblemCode::UnsupportedMediaType => "unsupported_media_type",
            ProblemCode::ValidationFailed => "validation_failed",
            ProblemCode::RateLimited => "rate_limited",
            ProblemCode::Unavailable => "unavailable",
            ProblemCode::StorageFull => "storage_full",
            ProblemCode::Internal => "internal",
        }
    }
}

/// An error answer (RFC 9457 `application/problem+json`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    /// The stable machine code, such as `invalid_token` or `validation_failed`.
    #[schema(value_type = ProblemCode)]
    code: &'static str,
    detail: String,
    /// Only with `validation_failed`: what is wrong with which field.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidSignature(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidToken(_) | ApiError::InvalidCredentials => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) | ApiError::AccountSuspended | ApiError::RegistrationClosed => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::EmailTaken
            | ApiError::SlugTaken
            | ApiError::LastAdmin(_)
            | ApiError::PlanTaken
            | ApiError::PlanInUse(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::StorageFull => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let errors = match self {
            ApiError::Validation(errors) => Some(errors.as_slice()),
            _ => None,
        };
        let problem = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code: self.code(),
            detail: self.to_string(),
            errors,
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::InvalidToken(_) => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
            }
            ApiError::RateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        // Serializing this struct cannot fail; an empty body would still carry the status.
        response.body(serde_json::to_vec(&problem).unwrap_or_default())
    }
}

impl From<sqlx::Error> for ApiError {
    /// The database out of reach (connection lost or refused, no free connection in
    /// time) is 503 `unavailable`, which a client may retry; anything else is 500.
    fn from(error: sqlx::Error) -> Self {
        if crate::store::storage_full(&error) {
            tracing::error!(%error, "a write failed: the database's disk is full");
            ApiError::StorageFull
        } else if crate::store::database_unreachable(&error) {
            tracing::warn!(%error, "the database is not answering");
            ApiError::Unavailable("the database is not answering; try again shortly")
        } else {
            ApiError::internal(error)
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    /// The usual meaning of each outcome; handlers map `Conflict` to the specific code.
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::NotFound => {
                ApiError::NotFound("there is nothing with this id")
            }
            crate::store::StoreError::LastAdmin => {
                ApiError::LastAdmin("this is the last active admin; make another admin first")
            }
            crate::store::StoreError::Database(error) => error.into(),
            crate::store::StoreError::Unreachable => {
                ApiError::Unavailable("the database is not answering; try again shortly")
            }
            other => ApiError::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::ProblemCode;

    #[test]
    fn every_code_is_written_as_it_is_serialized() {
        use ProblemCode::*;
        for code in [
            InvalidRequest,
            Unauthorized,
            InvalidToken,
            InvalidCredentials,
            Forbidden,
            AccountSuspended,
            RegistrationClosed,
            NotFound,
            MethodNotAllowed,
            EmailTaken,
            SlugTaken,
            LastAdmin,
            PlanTaken,
            PlanInUse,
            InvalidSignature,
            PayloadTooLarge,
            HeadersTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            RateLimited,
            Unavailable,
            StorageFull,
            Internal,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
    }
}
