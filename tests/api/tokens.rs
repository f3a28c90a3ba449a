//! Forged and stale tokens: always 401 `invalid_token`, on public and private routes,
//! never a silent fall back to anonymous. Sessions: refresh rotation, reuse, logout.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::*;

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, algorithm: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

async fn assert_rejected(app: &TestApp, token: &str, what: &str) {
    for path in ["/v1/articles/open", "/v1/articles", "/v1/me"] {
        let response = app.get(path, Some(token)).await;
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(r#"Bearer error="invalid_token""#),
            "{what} on {path}"
        );
        let problem = assert_problem(response, 401, "invalid_token").await;
        assert!(!problem.to_string().contains("Secret"), "{what}");
    }
}

// ASVS 5.0 V9.1.1, V9.1.2, V9.2.1, V9.2.3 (see also hardening.rs for RFC 8725).
#[tokio::test]
async fn forged_tokens_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(
        &admin,
        json!({"title": "Open", "slug": "open", "body": "Free text.\n\nSecret text.",
               "section": "news", "access": "free", "status": "published"}),
    )
    .await;
    let (_, real) = app.reader("forged@test.example").await;
    let claims = claims_of(&real);
    // The real token works, so every refusal below is due to the forgery alone.
    assert_eq!(app.get("/v1/me", Some(&real)).await.status(), 200);

    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        c
    };
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut tampered_parts: Vec<String> = real.split('.').map(str::to_string).collect();
    tampered_parts[1] = URL_SAFE_NO_PAD.encode(with("role", json!("admin")).to_string());
    let tampered = tampered_parts.join(".");

    let forgeries = [
        ("alg none", unsigned(&claims)),
        (
            "wrong key",
            sign(
                &claims,
                Algorithm::HS256,
                "another-secret-that-is-long-enough-0000",
            ),
        ),
        (
            "other algorithm, right key",
            sign(&claims, Algorithm::HS512, SECRET),
        ),
        (
            "expired",
            sign(&with("exp", json!(now() - 3_600)), Algorithm::HS256, SECRET),
        ),
        (
            "exp as a string",
            sign(
                &with("exp", json!((now() + 3_600).to_string())),
                Algorithm::HS256,
                SECRET,
            ),
        ),
        ("no exp", sign(&no_exp, Algorithm::HS256, SECRET)),
        (
            "wrong issuer",
            sign(
                &with("iss", json!("someone-else")),
                Algorithm::HS256,
                SECRET,
            ),
        ),
        (
            "wrong audience",
            sign(&with("aud", json!("another-app")), Algorithm::HS256, SECRET),
        ),
        (
            "unknown session",
            sign(
                &with("sid", json!("0193b3a2-0000-7000-8000-000000000000")),
                Algorithm::HS256,
                SECRET,
            ),
        ),
        ("tampered payload", tampered),
        ("garbage", "garbage".to_string()),
        ("three dots", "a.b.c".to_string()),
    ];
    for (what, token) in forgeries {
        assert_rejected(&app, &token, what).await;
    }

    // Not the Bearer scheme, or an empty one.
    for header in ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer ", "Bearer"] {
        let response = app
            .client
            .get(app.url("/v1/articles/open"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_problem(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn no_token_on_a_private_route_is_unauthorized() {
    let app = TestApp::spawn().await;
    let response = app.get("/v1/me", None).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_problem(response, 401, "unauthorized").await;
    assert_problem(
        app.post("/v1/auth/logout", None, json!({})).await,
        401,
        "unauthorized",
    )
    .await;
}

// ASVS 5.0 V7.2.3 (refresh tokens: 256 random bits) and V7.2.4 (a new token on every
// refresh, the old one terminated); RFC 6819 reuse detection.
#[tokio::test]
async fn refresh_rotates_and_reuse_ends_the_session() {
    let app = TestApp::spawn().await;
    app.reader("refresh@test.example").await;
    let first = app.login("refresh@test.example", PASSWORD).await;
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 900);
    assert_eq!(first["account"]["email"], "refresh@test.example");
    let claims = claims_of(first["access_token"].as_str().unwrap());
    for claim in ["iss", "aud", "sub", "sid", "role", "iat", "exp"] {
        assert!(!claims[claim].is_null(), "claim {claim}");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    let old_refresh = first["refresh_token"].as_str().unwrap();
    let response = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": old_refresh}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let new_access = token_of(&second);
    assert_eq!(app.get("/v1/me", Some(&new_access)).await.status(), 200);

    // The spent token again: the whole session ends, both of its tokens included.
    let reuse = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": old_refresh}),
        )
        .await;
    assert_problem(reuse, 401, "invalid_token").await;
    assert_problem(
        app.get("/v1/me", Some(&new_access)).await,
        401,
        "invalid_token",
    )
    .await;
    let after = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": second["refresh_token"]}),
        )
        .await;
    assert_problem(after, 401, "invalid_token").await;

    for bad in [
        json!({"refresh_token": "not-a-token"}),
        json!({"refresh_token": ""}),
    ] {
        assert_problem(
            app.post("/v1/auth/refresh", None, bad).await,
            401,
            "invalid_token",
        )
        .await;
    }
    assert_problem(
        app.post("/v1/auth/refresh", None, json!({})).await,
        422,
        "validation_failed",
    )
    .await;
}

// ASVS 5.0 V7.4.1: logout terminates the session; the back button cannot resume it.
#[tokio::test]
async fn logout_ends_only_its_own_session() {
    let app = TestApp::spawn().await;
    let (_, phone) = app.reader("logout@test.example").await;
    let laptop_pair = app.login("logout@test.example", PASSWORD).await;
    let laptop = token_of(&laptop_pair);
    let response = app.post("/v1/auth/logout", Some(&phone), json!({})).await;
    assert_eq!(response.status(), 204);
    assert_problem(app.get("/v1/me", Some(&phone)).await, 401, "invalid_token").await;
    assert_problem(
        app.post("/v1/auth/logout", Some(&phone), json!({})).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(app.get("/v1/me", Some(&laptop)).await.status(), 200);
    // A logged-out session cannot be revived through its refresh token either.
    let pair = app.login("logout@test.example", PASSWORD).await;
    app.post("/v1/auth/logout", Some(&token_of(&pair)), json!({}))
        .await;
    let revived = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_problem(revived, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_generated_secret_is_kept_beside_the_database_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("keep.db").display());
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db_url.clone(),
        &[("PAYWALL_JWT_SECRET", "")],
    )
    .await;
    let token = app.admin_token().await;
    drop(app);
    let secret_file = dir.path().join("keep.db.jwt-secret");
    let secret =
        std::fs::read_to_string(&secret_file).expect("secret file written beside the database");
    assert!(secret.trim().len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read the secret");
    }
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db_url,
        &[("PAYWALL_JWT_SECRET", "")],
    )
    .await;
    assert_eq!(app.get("/v1/me", Some(&token)).await.status(), 200);
}
