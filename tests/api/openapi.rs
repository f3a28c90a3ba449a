//! `GET /openapi.json`: a valid OpenAPI 3.1 document of exactly the contract's routes,
//! each of which the server really answers, with problem+json errors, the bearer
//! scheme, and no article text in examples.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

/// Every route of API.md, as (method, path template).
const CONTRACT: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/v1/auth/register"),
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("post", "/v1/auth/password-reset/request"),
    ("post", "/v1/auth/password-reset"),
    ("get", "/v1/me"),
    ("patch", "/v1/me"),
    ("delete", "/v1/me"),
    ("post", "/v1/me/password"),
    ("get", "/v1/me/sessions"),
    ("delete", "/v1/me/sessions"),
    ("get", "/v1/articles"),
    ("get", "/v1/articles/{slug}"),
    ("post", "/v1/articles/{slug}/gifts"),
    ("get", "/v1/admin/accounts"),
    ("post", "/v1/admin/accounts"),
    ("get", "/v1/admin/accounts/{id}"),
    ("patch", "/v1/admin/accounts/{id}"),
    ("delete", "/v1/admin/accounts/{id}"),
    ("post", "/v1/admin/accounts/{id}/password-reset"),
    ("put", "/v1/admin/accounts/{id}/subscription"),
    ("delete", "/v1/admin/accounts/{id}/subscription"),
    ("delete", "/v1/admin/accounts/{id}/sessions"),
    ("get", "/v1/admin/audit"),
    ("get", "/v1/admin/articles"),
    ("post", "/v1/admin/articles"),
    ("get", "/v1/admin/articles/{slug}"),
    ("patch", "/v1/admin/articles/{slug}"),
    ("delete", "/v1/admin/articles/{slug}"),
    ("get", "/v1/plans"),
    ("get", "/v1/admin/plans"),
    ("post", "/v1/admin/plans"),
    ("get", "/v1/admin/plans/{id}"),
    ("patch", "/v1/admin/plans/{id}"),
    ("delete", "/v1/admin/plans/{id}"),
    ("post", "/v1/me/checkout"),
    ("get", "/v1/me/billing"),
    ("post", "/v1/webhooks/stripe"),
    ("post", "/v1/admin/api-keys"),
    ("get", "/v1/admin/api-keys"),
    ("delete", "/v1/admin/api-keys/{id}"),
    ("post", "/v1/admin/webhooks"),
    ("get", "/v1/admin/webhooks"),
    ("get", "/v1/admin/webhooks/{id}"),
    ("patch", "/v1/admin/webhooks/{id}"),
    ("delete", "/v1/admin/webhooks/{id}"),
    ("get", "/v1/admin/webhooks/{id}/deliveries"),
    ("post", "/v1/me/seat"),
    // Beyond API.md: the admin's view of an account's reading seats.
    ("get", "/v1/admin/accounts/{id}/seats"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

async fn document(app: &TestApp) -> (String, Value) {
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).expect("the document is JSON");
    (text, json)
}

/// Every `$ref` in the document, with where it was found.
fn refs(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref" {
                    found.push((at.to_string(), inner.as_str().unwrap_or("").to_string()));
                } else {
                    refs(inner, &format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                refs(inner, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// Every string under an `example` or `examples` key.
fn examples(value: &Value, inside: bool, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                examples(
                    inner,
                    inside || key == "example" || key == "examples",
                    found,
                );
            }
        }
        Value::Array(items) => items.iter().for_each(|v| examples(v, inside, found)),
        Value::String(text) if inside => found.push(text.clone()),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_parses_as_openapi_3_1_and_every_reference_resolves() {
    let app = TestApp::spawn().await;
    let (text, json) = document(&app).await;

    let spec = oas3::from_json(&text).expect("an OpenAPI 3.1 document");
    spec.validate_version()
        .expect("a supported OpenAPI version");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    for (path, method, operation) in spec.operations() {
        let responses = operation.responses(&spec);
        assert!(
            !responses.is_empty(),
            "{method} {path} documents its answers"
        );
        operation
            .parameters(&spec)
            .unwrap_or_else(|e| panic!("{method} {path} parameters: {e}"));
        operation
            .request_body(&spec)
            .unwrap_or_else(|e| panic!("{method} {path} request body: {e}"));
    }
    for (name, schema) in &spec.components.as_ref().expect("components").schemas {
        schema
            .resolve(&spec)
            .unwrap_or_else(|e| panic!("schema {name}: {e}"));
    }

    let mut found = Vec::new();
    refs(&json, "#", &mut found);
    assert!(
        found.len() > 50,
        "the document shares its schemas by reference"
    );
    for (at, target) in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: {target} is not local"));
        assert!(
            json.pointer(pointer).is_some(),
            "{at}: {target} points at nothing"
        );
    }
}

#[tokio::test]
async fn the_document_has_exactly_the_contract_routes_and_the_server_answers_each() {
    let app = TestApp::spawn().await;
    let (_, json) = document(&app).await;

    let mut documented = BTreeSet::new();
    for (path, item) in json["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(*method).is_some() {
                documented.insert((method.to_string(), path.clone()));
            }
        }
    }
    let contract: BTreeSet<(String, String)> = CONTRACT
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, contract);

    // Each route exists on the server: never the unknown-path 404 nor a 405.
    for (method, path) in CONTRACT {
        let concrete = path
            .replace("{slug}", "no-such-article")
            .replace("{id}", "0193aaaa-0000-7000-8000-000000000000");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app.request(method.clone(), &concrete, None, None).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_ne!(status, 405, "{method} {concrete}: {body}");
        assert!(
            !body.contains("there is nothing at this path"),
            "{method} {concrete} is routed: {body}"
        );
    }
}

#[tokio::test]
async fn errors_are_problem_json_and_protected_routes_name_the_bearer_scheme() {
    let app = TestApp::spawn().await;
    let (_, json) = document(&app).await;

    let schemes = &json["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "paywall_session");
    assert_eq!(schemes["api_key"]["type"], "http");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    let problem = &json["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "code", "detail"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&Value::from(field)),
            "Problem requires {field}"
        );
    }

    for (method, path) in CONTRACT {
        let operation = &json["paths"][path][method];
        let responses = operation["responses"].as_object().unwrap();
        let successes = responses.keys().filter(|s| s.starts_with('2')).count();
        assert_eq!(successes, 1, "{method} {path} has one success answer");
        for (status, response) in responses {
            if !status.starts_with('2') {
                assert!(
                    response["content"]["application/problem+json"]["schema"]["$ref"]
                        == "#/components/schemas/Problem",
                    "{method} {path} {status} is problem+json"
                );
            }
        }
        let security: Vec<String> = operation["security"]
            .as_array()
            .map(|alternatives| {
                alternatives
                    .iter()
                    .map(|a| {
                        a.as_object()
                            .unwrap()
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("+")
                    })
                    .collect()
            })
            .unwrap_or_default();
        let needs_token = path.starts_with("/v1/admin/")
            || path.starts_with("/v1/me")
            || path.ends_with("/gifts")
            || *path == "/v1/auth/logout";
        // API keys open the admin routes of accounts, subscriptions, articles and the
        // audit log; never plans, keys or webhooks.
        let keys_open = [
            "/v1/admin/accounts",
            "/v1/admin/articles",
            "/v1/admin/audit",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix));
        if needs_token && keys_open {
            assert_eq!(
                security[..2],
                ["bearer", "session_cookie"],
                "{method} {path}"
            );
            assert!(
                security.len() > 2 && security[2..].iter().all(|s| s == "api_key"),
                "{method} {path}: {security:?}"
            );
            let scopes = &operation["security"][2]["api_key"];
            assert!(
                scopes.as_array().is_some_and(|s| s.len() == 1),
                "{method} {path}"
            );
            for status in ["401", "403"] {
                assert!(responses.contains_key(status), "{method} {path} {status}");
            }
        } else if needs_token {
            assert_eq!(security, ["bearer", "session_cookie"], "{method} {path}");
            for status in ["401", "403"] {
                assert!(responses.contains_key(status), "{method} {path} {status}");
            }
        } else if path.starts_with("/v1/articles") {
            // Anonymous readers are served, so no security requirement (a generated
            // client would demand a token); a token sent unlocks more, and a bad one is
            // still 401.
            assert!(security.is_empty(), "{method} {path}: {security:?}");
            assert!(
                responses.contains_key("401"),
                "{method} {path} invalid_token"
            );
        } else {
            assert!(security.is_empty(), "{method} {path} needs no token");
        }
        if path.starts_with("/v1/webhooks/") {
            // Signed events, read as raw bytes: no media type is refused, nothing is
            // validated field by field, and no token is read.
            for status in ["400", "413"] {
                assert!(responses.contains_key(status), "{method} {path} {status}");
            }
            for status in ["401", "415", "422"] {
                assert!(!responses.contains_key(status), "{method} {path} {status}");
            }
        } else if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(responses.contains_key(status), "{method} {path} {status}");
            }
        }
    }
}

#[tokio::test]
async fn examples_carry_no_article_text() {
    let app = TestApp::spawn().await;
    let (text, json) = document(&app).await;
    let mut found = Vec::new();
    examples(&json, false, &mut found);
    for sample in paywall::demo::ARTICLES {
        let opening: String = sample.body.chars().take(40).collect();
        assert!(!text.contains(&opening), "demo text of {}", sample.slug);
        assert!(
            !text.contains(sample.title),
            "demo title of {}",
            sample.slug
        );
    }
    for example in found {
        assert!(
            example.chars().count() <= 80,
            "an example as long as article text: {example}"
        );
    }
}

#[tokio::test]
async fn generated_clients_get_shared_types_closed_codes_and_summaries() {
    let app = TestApp::spawn().await;
    let document: serde_json::Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let schemas = &document["components"]["schemas"];
    for (page, item) in [
        ("Page_ArticleSummary", "ArticleSummary"),
        ("Page_AccountView", "AccountView"),
        ("Page_AuditView", "AuditView"),
        ("Page_AdminArticleSummary", "AdminArticleSummary"),
    ] {
        assert_eq!(
            schemas[page]["properties"]["items"]["items"]["$ref"],
            format!("#/components/schemas/{item}"),
            "{page}"
        );
    }
    // Reading seats: the reason, the sessions' flag and the admin's view are typed.
    let reasons = schemas["Reason"]["enum"]
        .as_array()
        .expect("Reason is an enum");
    assert!(
        reasons.contains(&serde_json::json!("reading_elsewhere")),
        "{reasons:?}"
    );
    assert_eq!(
        schemas["SessionView"]["properties"]["reading"]["type"],
        "boolean"
    );
    assert!(schemas["SessionView"]["required"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("reading")));
    assert_eq!(
        schemas["SeatsView"]["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/HeldSeatView"
    );
    let codes: Vec<&str> = schemas["ProblemCode"]["enum"]
        .as_array()
        .expect("Problem.code is an enum")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "invalid_request",
        "invalid_token",
        "validation_failed",
        "rate_limited",
        "unavailable",
        "last_admin",
    ] {
        assert!(codes.contains(&code), "{code}");
    }
    assert_eq!(
        schemas["GiftView"]["properties"]["expires_at"]["format"],
        "date-time"
    );
    // Members always sent, null included, are required: `paywall` is null or a notice.
    // ArticleView is the summary (a reference) and its own members.
    let required = schemas["ArticleView"]["allOf"][1]["required"]
        .as_array()
        .unwrap();
    for member in ["paywall", "meter", "body", "truncated"] {
        assert!(required.iter().any(|r| r == member), "{member}");
    }
    assert!(!schemas["Problem"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "errors"));
    assert!(document["servers"][0]["url"].is_string());
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let summary = operation["summary"].as_str().unwrap_or("");
            assert!(!summary.is_empty(), "{method} {path} has no summary");
        }
    }
}
