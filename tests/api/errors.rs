//! The framework's own errors, in the contract's problem+json shape.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn unknown_routes_and_methods() {
    let app = TestApp::spawn().await;
    assert_problem(app.get("/nowhere", None).await, 404, "not_found").await;
    assert_problem(app.get("/v1/nowhere", None).await, 404, "not_found").await;
    assert_problem(
        app.get("/v1/admin/articles/a/b", None).await,
        404,
        "not_found",
    )
    .await;
    let response = app
        .request(Method::DELETE, "/v1/articles", None, None)
        .await;
    assert_eq!(response.headers()["allow"], "GET");
    assert_problem(response, 405, "method_not_allowed").await;
    assert_problem(
        app.get("/v1/auth/login", None).await,
        405,
        "method_not_allowed",
    )
    .await;
    assert_problem(
        app.request(Method::PUT, "/v1/admin/articles/x", None, None)
            .await,
        405,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn bodies_that_are_not_json() {
    let app = TestApp::spawn().await;
    let send = |content_type: Option<&'static str>, body: &'static str| {
        let mut request = app.client.post(app.url("/v1/auth/register")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    assert_problem(
        send(None, r#"{"email":"a@b.example"}"#).await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_problem(
        send(Some("text/plain"), r#"{"email":"a@b.example"}"#)
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_problem(
        send(Some("application/json"), "{not json").await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_problem(
        send(Some("application/json"), "").await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_problem(
        send(Some("application/json; charset=utf-8"), "{\"email\": ")
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn bodies_over_sixteen_kibibytes_are_too_large_outside_article_writes() {
    let app = TestApp::spawn().await;
    let big = json!({"email": "a@test.example", "password": "x".repeat(17 * 1024)});
    assert_problem(
        app.post("/v1/auth/register", None, big.clone()).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_problem(
        app.post("/v1/auth/login", None, big).await,
        413,
        "payload_too_large",
    )
    .await;
    // Also when the length is not announced up front.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn operations_endpoints() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    assert_eq!(
        app.get("/healthz", None).await.headers()["x-content-type-options"],
        "nosniff"
    );
}
