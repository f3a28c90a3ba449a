//! What a browser relies on: the session cookie set at sign-in and refresh and expired
//! at sign-out, and CORS granted to exactly the configured origins.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("paywall_session="))
        .map(str::to_string)
        .collect()
}

fn attributes(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn sign_in_and_refresh_set_the_session_cookie_and_sign_out_expires_it() {
    let app = TestApp::spawn().await;
    app.reader("gus@example.org").await;
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "gus@example.org", "password": PASSWORD}),
        )
        .await;
    let cookies = set_cookies(&login);
    let pair: Value = login.json().await.unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let access = pair["access_token"].as_str().unwrap();
    assert!(cookies[0].starts_with(&format!("paywall_session={access};")));
    let attrs = attributes(&cookies[0]);
    for wanted in ["httponly", "samesite=lax", "path=/", "max-age=900"] {
        assert!(attrs.iter().any(|a| a == wanted), "{wanted}: {attrs:?}");
    }
    assert!(
        !attrs.iter().any(|a| a == "secure"),
        "plain http: {attrs:?}"
    );

    // The cookie alone signs the reader in on reads.
    let cookie = cookies[0].split(';').next().unwrap().to_string();
    let me = app
        .client
        .get(app.url("/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let refreshed = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    let cookies = set_cookies(&refreshed);
    let next: Value = refreshed.json().await.unwrap();
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].starts_with(&format!(
        "paywall_session={};",
        next["access_token"].as_str().unwrap()
    )));

    let out = app
        .request(
            Method::POST,
            "/v1/auth/logout",
            Some(next["access_token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(out.status(), 204);
    let cookies = set_cookies(&out);
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].starts_with("paywall_session=;"), "{cookies:?}");
    assert!(
        attributes(&cookies[0]).iter().any(|a| a == "max-age=0"),
        "{cookies:?}"
    );

    // Signing out everywhere expires it too.
    let (_, token) = app.reader("hal@example.org").await;
    let everywhere = app
        .request(Method::DELETE, "/v1/me/sessions", Some(&token), None)
        .await;
    assert_eq!(everywhere.status(), 204);
    assert!(set_cookies(&everywhere)[0].starts_with("paywall_session=;"));
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let app = TestApp::spawn_with(&[("PAYWALL_PUBLIC_URL", "https://news.example")]).await;
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    let cookies = set_cookies(&login);
    assert!(
        attributes(&cookies[0]).iter().any(|a| a == "secure"),
        "{cookies:?}"
    );
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn cors_is_granted_to_exactly_the_configured_origins() {
    let app = TestApp::spawn_with(&[(
        "PAYWALL_CORS_ORIGINS",
        "https://www.news.example, https://app.news.example/",
    )])
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/v1/me"))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    for origin in ["https://www.news.example", "https://app.news.example"] {
        let response = preflight(origin).await.unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            Some(origin)
        );
        assert_eq!(
            header(&response, "access-control-allow-credentials"),
            Some("true")
        );
        let methods = header(&response, "access-control-allow-methods").unwrap();
        assert!(methods.contains("PATCH"), "{methods}");
        let headers = header(&response, "access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "{headers}"
        );
    }
    // Another origin gets no grant, on a preflight or a request.
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(header(&refused, "access-control-allow-origin").is_none());
    assert!(header(&refused, "access-control-allow-credentials").is_none());

    let token = app.admin_token().await;
    for (origin, granted) in [
        ("https://www.news.example", true),
        ("https://evil.example", false),
        ("https://www.news.example.evil.example", false),
    ] {
        let response = app
            .client
            .get(app.url("/v1/me"))
            .bearer_auth(&token)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let vary = header(&response, "vary").unwrap_or("").to_string();
        assert!(vary.contains("Origin"), "{vary}");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            granted.then_some(origin),
            "{origin}"
        );
        assert_eq!(
            header(&response, "access-control-allow-credentials"),
            granted.then_some("true")
        );
    }
}

#[tokio::test]
async fn without_cors_origins_no_origin_gets_a_grant() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .request(Method::OPTIONS, app.url("/v1/me"))
        .header("origin", "https://www.news.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(header(&response, "access-control-allow-origin").is_none());
    assert_problem(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_cors_origin_with_a_path_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = paywall_command(dir.path())
        .args(["check-config"])
        .env("PAYWALL_CORS_ORIGINS", "https://www.news.example/paywall")
        .env("PAYWALL_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PAYWALL_CORS_ORIGINS"), "{stderr}");
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_bad_request() {
    let app = TestApp::spawn().await;
    for body in [
        &b"{\"email\": \"a\xff@example.org\", \"password\": \"x\"}"[..],
        b"{\"email\": \"\xc3\", \"password\": \"x\"}",
    ] {
        let response = app
            .client
            .post(app.url("/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, "invalid_request").await;
    }
}
