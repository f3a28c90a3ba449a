//! API keys: made by an admin, shown once, scoped to admin routes, audited, revoked.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Makes a key with `scopes` and returns the answer (with `key`).
pub async fn api_key(app: &TestApp, admin: &str, scopes: &[&str]) -> Value {
    let response = app
        .post(
            "/v1/admin/api-keys",
            Some(admin),
            json!({"name": format!("key for {}", scopes.join(", ")), "scopes": scopes}),
        )
        .await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer
}

fn key_of(answer: &Value) -> String {
    answer["key"].as_str().expect("key").to_string()
}

#[tokio::test]
async fn a_key_is_shown_once_and_listed_with_its_last_use() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let made = api_key(&app, &admin, &["articles", "audit"]).await;
    let key = key_of(&made);
    assert!(key.starts_with("pwk_") && key.len() == 47, "{key}");
    assert!(made["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(made["scopes"], json!(["articles", "audit"]));
    assert_eq!(made["prefix"], json!(&key[..12]));
    assert_eq!(made["last_used_at"], Value::Null);
    assert_eq!(made["revoked_at"], Value::Null);

    let list: Value = app
        .get("/v1/admin/api-keys", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], made["id"]);
    assert!(
        !list.to_string().contains(&key[12..]),
        "a list never holds a key: {list}"
    );
    assert!(list["items"][0].get("key").is_none());

    assert_eq!(
        app.get("/v1/admin/articles", Some(&key)).await.status(),
        200
    );
    let list: Value = app
        .get("/v1/admin/api-keys", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(list["items"][0]["last_used_at"].is_string(), "{list}");

    // Only a digest is stored.
    let digest: String = sqlx::query_scalar("SELECT digest FROM api_keys")
        .fetch_one(&mut database(&app).await)
        .await
        .unwrap();
    assert!(!digest.contains(&key[4..]) && digest != key);
}

#[tokio::test]
async fn a_key_opens_only_the_admin_routes_of_its_scopes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (reader_id, _) = app.reader("scoped@test.example").await;
    let articles = key_of(&api_key(&app, &admin, &["articles"]).await);
    let subscriptions = key_of(&api_key(&app, &admin, &["subscriptions"]).await);

    // Its own scope: an article written and audited with the key as actor.
    let response = app
        .post(
            "/v1/admin/articles",
            Some(&articles),
            json!({"title": "From the CMS", "body": long_body(3), "section": "s",
                   "access": "free", "status": "published"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let article: Value = response.json().await.unwrap();
    assert_eq!(
        app.request(
            Method::PATCH,
            "/v1/admin/articles/from-the-cms",
            Some(&articles),
            Some(json!({"title": "From the CMS, edited"}))
        )
        .await
        .status(),
        200
    );

    // Every other route, admin or not, is refused.
    for (method, path) in [
        (Method::GET, "/v1/admin/accounts".to_string()),
        (Method::GET, format!("/v1/admin/accounts/{reader_id}")),
        (Method::GET, "/v1/admin/audit".to_string()),
        (Method::GET, "/v1/admin/plans".to_string()),
        (Method::GET, "/v1/admin/api-keys".to_string()),
        (Method::GET, "/v1/admin/webhooks".to_string()),
        (Method::GET, "/v1/me".to_string()),
        (Method::GET, "/v1/me/sessions".to_string()),
        (Method::GET, "/v1/articles".to_string()),
        (Method::GET, "/v1/articles/from-the-cms".to_string()),
    ] {
        let response = app
            .request(method.clone(), &path, Some(&articles), None)
            .await;
        assert_problem(response, 403, "forbidden").await;
    }
    assert_problem(
        app.post(
            "/v1/admin/api-keys",
            Some(&articles),
            json!({"name": "escalation", "scopes": ["accounts"]}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    // Subscriptions: find the account and grant one, but change nothing else.
    assert_eq!(
        app.get(
            &format!("/v1/admin/accounts/{reader_id}"),
            Some(&subscriptions)
        )
        .await
        .status(),
        200
    );
    let granted = app
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{reader_id}/subscription"),
            Some(&subscriptions),
            Some(json!({"plan": "digital", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(granted.status(), 200);
    assert_problem(
        app.request(
            Method::PATCH,
            &format!("/v1/admin/accounts/{reader_id}"),
            Some(&subscriptions),
            Some(json!({"role": "admin"})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.request(
            Method::DELETE,
            "/v1/admin/articles/from-the-cms",
            Some(&subscriptions),
            None,
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    // The audit log names each key as the actor of its changes.
    let audit: Value = app
        .get("/v1/admin/audit?limit=100", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().unwrap();
    let by_action = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {audit}"))
            .clone()
    };
    let created = by_action("article.create");
    assert_eq!(created["target_id"], article["id"]);
    assert_eq!(created["actor_type"], "api_key");
    assert!(created["actor_id"].as_str().unwrap().starts_with("key_"));
    let subscribed = by_action("subscription.put");
    assert_eq!(subscribed["actor_type"], "api_key");
    assert_ne!(subscribed["actor_id"], created["actor_id"]);
    assert_eq!(by_action("api_key.create")["actor_type"], "account");
    assert!(
        !audit.to_string().contains("pwk_"),
        "no key in the audit log: {audit}"
    );
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_its_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let made = api_key(&app, &admin, &["accounts"]).await;
    let key = key_of(&made);
    let id = made["id"].as_str().unwrap();
    assert_eq!(
        app.get("/v1/admin/accounts", Some(&key)).await.status(),
        200
    );
    let revoked = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    let problem = assert_problem(
        app.get("/v1/admin/accounts", Some(&key)).await,
        401,
        "invalid_token",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    assert_problem(
        app.request(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{id}"),
            Some(&admin),
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let list: Value = app
        .get("/v1/admin/api-keys", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(list["items"][0]["revoked_at"].is_string());
}

#[tokio::test]
async fn unknown_and_misplaced_keys_are_invalid_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let key = key_of(&api_key(&app, &admin, &["accounts"]).await);
    let unknown = format!("pwk_{}", "A".repeat(43));
    for token in [unknown.as_str(), "pwk_short", "pwk_", &format!("{key}x")] {
        assert_problem(
            app.get("/v1/admin/accounts", Some(token)).await,
            401,
            "invalid_token",
        )
        .await;
    }
    // A key is sent in the Authorization header; as the session cookie it is no token.
    let response = app
        .client
        .get(app.url("/v1/admin/accounts"))
        .header("cookie", format!("paywall_session={key}"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn bad_key_requests_get_the_contract_errors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (body, field) in [
        (json!({"scopes": ["accounts"]}), "name"),
        (json!({"name": "  ", "scopes": ["accounts"]}), "name"),
        (
            json!({"name": "x".repeat(101), "scopes": ["accounts"]}),
            "name",
        ),
        (json!({"name": "CMS"}), "scopes"),
        (json!({"name": "CMS", "scopes": []}), "scopes"),
        (json!({"name": "CMS", "scopes": ["billing"]}), "scopes"),
    ] {
        let problem = assert_problem(
            app.post("/v1/admin/api-keys", Some(&admin), body.clone())
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    assert_problem(
        app.post(
            "/v1/admin/api-keys",
            Some(&admin),
            json!({"name": "CMS", "scopes": ["accounts"], "role": "admin"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.post(
            "/v1/admin/api-keys",
            None,
            json!({"name": "CMS", "scopes": ["accounts"]}),
        )
        .await,
        401,
        "unauthorized",
    )
    .await;
    let (_, reader) = app.reader("not-admin@test.example").await;
    assert_problem(
        app.post(
            "/v1/admin/api-keys",
            Some(&reader),
            json!({"name": "CMS", "scopes": ["accounts"]}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.request(
            Method::DELETE,
            "/v1/admin/api-keys/key_0193a3b4c5d6e7f8091a2b3c4d5e6f70",
            Some(&admin),
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/admin/api-keys?cursor=nonsense", Some(&admin))
            .await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn keys_survive_a_rotation_of_the_signing_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "key-rotation");
    let old = "the-old-secret-0123456789abcdef-0123456";
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db.url.clone(),
        &[("PAYWALL_JWT_SECRET", old)],
    )
    .await;
    let admin = app.admin_token().await;
    let key = key_of(&api_key(&app, &admin, &["audit"]).await);
    drop(app);
    // Rotating: the key made under the old secret is found, and kept under the new.
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db.url.clone(),
        &[
            ("PAYWALL_JWT_SECRET", SECRET),
            ("PAYWALL_JWT_PREVIOUS_SECRETS", old),
        ],
    )
    .await;
    assert_eq!(app.get("/v1/admin/audit", Some(&key)).await.status(), 200);
    drop(app);
    // The old secret gone: the key still opens its routes.
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db.url.clone(),
        &[("PAYWALL_JWT_SECRET", SECRET)],
    )
    .await;
    assert_eq!(app.get("/v1/admin/audit", Some(&key)).await.status(), 200);
}
