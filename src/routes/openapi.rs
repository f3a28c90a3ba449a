//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated from the
//! handlers' annotations and the request and response types themselves.
//!
//! Each handler states its success answer and the errors particular to it; the errors
//! every route of a kind can give (a bad body, a bad token, a missing record, the
//! database away) are added here by one rule, so that no route forgets them.

use std::sync::OnceLock;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::views;
use crate::error::PROBLEM_JSON;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Paywall",
        description = "A metered paywall: articles, reader accounts, JWT sign-in, and teasers \
            with the share left to read. Every error is `application/problem+json` with a \
            stable `code`. A token that is present but invalid is always 401 `invalid_token`, \
            on public routes too. Lists take `limit` (1 to 100) and `cursor`, and answer \
            `{items, next_cursor}`. Sign-in and refresh also set the access token in the \
            HttpOnly `paywall_session` cookie (SameSite=Lax, Secure behind https); a request \
            that changes something and is authenticated by that cookie alone must come from \
            this service's own origin or one of `PAYWALL_CORS_ORIGINS` (its `Origin`, else \
            `Referer`, and `Sec-Fetch-Site` when sent), else 403 `forbidden`. Two \
            `Authorization` headers are 401 `invalid_token`; a control character in any \
            query parameter is 400 `invalid_request`.",
        license(name = "MIT")
    ),
    servers((url = "/", description = "This service (behind a proxy, its public address)")),
    components(schemas(
        crate::error::Problem,
        crate::error::ProblemCode,
        crate::error::FieldError,
        views::AccountView,
        views::ArticleSummary,
        views::AdminArticleSummary,
        views::AuditView,
    )),
    tags(
        (name = "auth", description = "Registration, sign-in, tokens and password resets"),
        (name = "me", description = "The signed-in reader's own account"),
        (name = "articles", description = "Reading articles: full text or teaser, meter and gifts"),
        (name = "admin accounts", description = "Accounts, subscriptions and the audit log (admin)"),
        (name = "admin articles", description = "Writing articles (editor or admin)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The answer members left out when they have no value (`skip_serializing_if`); every
/// other member of an answer is always there.
const SKIPPED_WHEN_NONE: &[(&str, &str)] = &[
    ("Problem", "errors"),
    ("CreatedAccountView", "password_reset"),
];

/// Adds the security schemes and the error answers shared by whole kinds of routes.
struct CommonAnswers;

fn problem(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn add(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| problem(description));
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from /v1/auth/login or /v1/auth/refresh",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pwk_ and 43 characters")
                    .description(Some(
                        "An API key from POST /v1/admin/api-keys, sent as `Authorization: Bearer pwk_...`. \
                         Each route lists the scopes that open it (any one suffices); a key gets 403 \
                         `forbidden` on every other route, and 401 `invalid_token` once revoked.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "paywall_session",
                "The same access token, in the HttpOnly cookie set at sign-in",
            ))),
        );

        // Answers carry every member, `null` included: serde writes a `None` as null
        // unless told to skip it, and only the members named here are skipped. So every
        // property of an answer's schema is required (a nullable one may be null), and a
        // generated client types `paywall` as `PaywallNotice | None`, not as possibly
        // absent. Request bodies keep their optional members.
        if let Some(components) = openapi.components.as_mut() {
            for (name, schema) in components.schemas.iter_mut() {
                if name.ends_with("Body") || name.ends_with("Input") {
                    continue;
                }
                let objects: Vec<&mut utoipa::openapi::schema::Object> = match schema {
                    RefOr::T(utoipa::openapi::Schema::Object(object)) => vec![object],
                    RefOr::T(utoipa::openapi::Schema::AllOf(all)) => all
                        .items
                        .iter_mut()
                        .filter_map(|item| match item {
                            RefOr::T(utoipa::openapi::Schema::Object(object)) => Some(object),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                for object in objects {
                    object.required = object
                        .properties
                        .keys()
                        .filter(|property| {
                            !SKIPPED_WHEN_NONE.contains(&(name.as_str(), property.as_str()))
                        })
                        .cloned()
                        .collect();
                }
            }
        }
        // A page's items name their schema rather than repeat it (utoipa inlines the
        // type argument of `Page<T>`), so generated clients share one type per row.
        if let Some(components) = openapi.components.as_mut() {
            for (name, schema) in components.schemas.iter_mut() {
                let Some(item) = name.strip_prefix("Page_") else {
                    continue;
                };
                if let RefOr::T(utoipa::openapi::Schema::Object(page)) = schema {
                    if let Some(RefOr::T(utoipa::openapi::Schema::Array(array))) =
                        page.properties.get_mut("items")
                    {
                        array.items = utoipa::openapi::schema::ArrayItems::RefOrSchema(Box::new(
                            RefOr::Ref(Ref::from_schema_name(item)),
                        ));
                    }
                }
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/v1/");
            // Another service's signed events: read as raw bytes of any type, and
            // authenticated by their signature, not by a token.
            let webhook = path.starts_with("/v1/webhooks/");
            let has_path_parameter = path.contains('{');
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.as_ref().is_some_and(|alternatives| {
                    !alternatives.is_empty()
                        && !alternatives.iter().any(|r| {
                            serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({}))
                        })
                });
                let has_query = operation.parameters.as_ref().is_some_and(|parameters| {
                    parameters
                        .iter()
                        .any(|p| p.parameter_in == ParameterIn::Query)
                });
                if operation.request_body.is_some() {
                    add(operation, "400", "`invalid_request`: the body is not JSON");
                    add(
                        operation,
                        "413",
                        "`payload_too_large`: 16 KiB at most (1 MiB for articles and webhooks)",
                    );
                }
                if operation.request_body.is_some() && !webhook {
                    add(
                        operation,
                        "415",
                        "`unsupported_media_type`: send `application/json`",
                    );
                    add(
                        operation,
                        "422",
                        "`validation_failed`: a field missing, unknown, of the wrong type or out of range, named in `errors`",
                    );
                }
                if has_query {
                    add(
                        operation,
                        "400",
                        "`invalid_request`: a bad query parameter or cursor",
                    );
                }
                if api && !webhook {
                    add(
                        operation,
                        "401",
                        if secured {
                            "`unauthorized`: no token; `invalid_token`: malformed, forged, expired or revoked"
                        } else {
                            "`invalid_token`: a token was sent and is not valid (never served as anonymous)"
                        },
                    );
                }
                if secured {
                    add(
                        operation,
                        "403",
                        "`forbidden`: this role may not do this, or a request signed in by the session cookie alone came from another site",
                    );
                }
                if has_path_parameter {
                    add(operation, "404", "`not_found`: no such record");
                }
                if api {
                    add(
                        operation,
                        "500",
                        "`internal`: an unexpected failure, never with details",
                    );
                    add(
                        operation,
                        "503",
                        "`unavailable`: the database is not answering, or the request reached its deadline; `storage_full`: the database's disk is full (writes and meter charges)",
                    );
                }
            }
        }
    }
}

/// The document, rendered once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = super::table::with_paths(ApiDoc::openapi());
        CommonAnswers.modify(&mut document);
        document
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}
