//! The reader's own account: name, password, devices, erasure.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn readers_rename_themselves() {
    let app = TestApp::spawn().await;
    let (_, token) = app.reader("name@test.example").await;
    let renamed: Value = app
        .request(
            Method::PATCH,
            "/v1/me",
            Some(&token),
            Some(json!({"display_name": "  Zoé  "})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["display_name"], "Zoé");
    let cleared: Value = app
        .request(
            Method::PATCH,
            "/v1/me",
            Some(&token),
            Some(json!({"display_name": null})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(cleared["display_name"].is_null());
    for (body, field) in [
        (json!({"display_name": "x".repeat(101)}), "display_name"),
        (json!({"role": "admin"}), "role"),
        (json!({"email": "other@test.example"}), "email"),
        (json!({"display_name": 5}), "display_name"),
    ] {
        let problem = assert_problem(
            app.request(Method::PATCH, "/v1/me", Some(&token), Some(body))
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let me: Value = app.get("/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["role"], "reader");
    assert_problem(
        app.request(Method::PATCH, "/v1/me", None, Some(json!({})))
            .await,
        401,
        "unauthorized",
    )
    .await;
}

// ASVS 5.0 V6.2.2 and V6.2.3 (change needs the current password), V6.2.4 (common
// passwords refused), V7.4.3 (other sessions end after the change).
#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let app = TestApp::spawn().await;
    let (_, here) = app.reader("pw@test.example").await;
    let elsewhere = token_of(&app.login("pw@test.example", PASSWORD).await);
    let change = |current: &str, new: &str| {
        app.post(
            "/v1/me/password",
            Some(&here),
            json!({"current_password": current, "new_password": new}),
        )
    };
    assert_problem(
        change("wrong-current-pw", "new-passphrase-Ibert-1890").await,
        401,
        "invalid_credentials",
    )
    .await;
    let problem =
        assert_problem(change(PASSWORD, "password").await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "new_password");
    assert_problem(
        app.post(
            "/v1/me/password",
            Some(&here),
            json!({"current_password": PASSWORD}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    // Nothing changed so far.
    assert_eq!(app.get("/v1/me", Some(&elsewhere)).await.status(), 200);

    assert_eq!(
        change(PASSWORD, "new-passphrase-Ibert-1890").await.status(),
        204
    );
    assert_eq!(
        app.get("/v1/me", Some(&here)).await.status(),
        200,
        "this session stays"
    );
    assert_problem(
        app.get("/v1/me", Some(&elsewhere)).await,
        401,
        "invalid_token",
    )
    .await;
    app.login("pw@test.example", "new-passphrase-Ibert-1890")
        .await;
    assert_problem(
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": "pw@test.example", "password": PASSWORD}),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
}

// ASVS 5.0 V7.5.2: readers see their sessions and can end them all.
#[tokio::test]
async fn readers_see_and_end_their_sessions() {
    let app = TestApp::spawn().await;
    app.reader("devices@test.example").await;
    let phone: Value = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", "Phone/1.0")
        .json(&json!({"email": "devices@test.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let phone = token_of(&phone);
    let laptop = token_of(&app.login("devices@test.example", PASSWORD).await);
    let list: Value = app
        .get("/v1/me/sessions", Some(&phone))
        .await
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        3,
        "the registration helper's sign-in, the phone, the laptop"
    );
    let current: Vec<&Value> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "Phone/1.0");
    for field in ["id", "created_at", "last_seen_at"] {
        assert!(items[0][field].is_string(), "{field}");
    }
    assert!(!list.to_string().contains("refresh"));

    assert_eq!(
        app.request(Method::DELETE, "/v1/me/sessions", Some(&laptop), None)
            .await
            .status(),
        204
    );
    assert_problem(app.get("/v1/me", Some(&laptop)).await, 401, "invalid_token").await;
    assert_problem(app.get("/v1/me", Some(&phone)).await, 401, "invalid_token").await;
}

// ASVS 5.0 V7.4.2: a deleted account's sessions end with it.
#[tokio::test]
async fn readers_erase_their_account_with_their_password() {
    let app = TestApp::spawn().await;
    let (id, token) = app.reader("erase@test.example").await;
    let other = token_of(&app.login("erase@test.example", PASSWORD).await);
    let wrong = app
        .request(
            Method::DELETE,
            "/v1/me",
            Some(&token),
            Some(json!({"password": "not-my-password"})),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    assert_problem(
        app.request(Method::DELETE, "/v1/me", Some(&token), Some(json!({})))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.request(Method::DELETE, "/v1/me", Some(&token), None)
            .await,
        415,
        "unsupported_media_type",
    )
    .await;
    let done = app
        .request(
            Method::DELETE,
            "/v1/me",
            Some(&token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(done.status(), 204);
    assert_problem(app.get("/v1/me", Some(&other)).await, 401, "invalid_token").await;
    assert!(app
        .store()
        .await
        .account_by_id(&id)
        .await
        .unwrap()
        .is_none());
    assert_problem(
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": "erase@test.example", "password": PASSWORD}),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    // The address is free again.
    app.reader("erase@test.example").await;
}
