//! Registration, sign-in and the account view, with their bad inputs.

use serde_json::{json, Value};

use crate::helpers::*;

fn field_of(problem: &Value) -> String {
    problem["errors"][0]["field"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

// ASVS 5.0 V6.2.8: the password is verified exactly as typed (spaces, case, no
// truncation); hashes are Argon2id at OWASP's minimum cost.
#[tokio::test]
async fn register_then_read_your_own_account() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "  Zoé.Lefèvre@Example.ORG ", "password": "  l’été à Zürich — 2026  ", "display_name": " Zoé "}),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let account: Value = response.json().await.unwrap();
    assert_eq!(account["email"], "zoé.lefèvre@example.org");
    assert_eq!(account["display_name"], "Zoé");
    assert_eq!(account["role"], "reader");
    assert_eq!(account["status"], "active");
    assert!(account["subscription"].is_null());
    assert!(uuid::Uuid::parse_str(account["id"].as_str().unwrap()).is_ok());
    assert!(account["created_at"].as_str().unwrap().ends_with('Z'));
    let text = account.to_string();
    assert!(!text.contains("argon2") && !text.contains("password"));

    // The password is used exactly as typed, spaces included; the email in any case.
    let pair = app
        .login("ZOÉ.LEFÈVRE@example.org", "  l’été à Zürich — 2026  ")
        .await;
    assert!(
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": "zoé.lefèvre@example.org", "password": "l’été à Zürich — 2026"})
        )
        .await
        .status()
            == 401
    );
    let me: Value = app
        .get("/v1/me", Some(&token_of(&pair)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], account["id"]);
    assert_eq!(pair["account"]["id"], account["id"]);

    // The stored hash is Argon2id at no less than the OWASP minimum.
    let row = app
        .store()
        .await
        .account_by_email("zoé.lefèvre@example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(row
        .password_hash
        .unwrap()
        .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
}

// ASVS 5.0 V6.2.1 (at least 8), V6.2.4 (common passwords refused by zxcvbn, whose
// lists hold the most common passwords), V6.2.9 (long passwords allowed: 128).
#[tokio::test]
async fn register_refuses_bad_input_with_the_contract_codes() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"password": PASSWORD}), "email"),
        (json!({"email": "a@test.example"}), "password"),
        (
            json!({"email": "not-an-address", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": format!("{}@test.example", "a".repeat(250)), "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "a@test.example", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@test.example", "password": "ééééééé"}),
            "password",
        ),
        (
            json!({"email": "a@test.example", "password": "x".repeat(129)}),
            "password",
        ),
        (
            json!({"email": "a@test.example", "password": "password123"}),
            "password",
        ),
        (
            json!({"email": "a@test.example", "password": "12345678"}),
            "password",
        ),
        (
            json!({"email": "a@test.example", "password": PASSWORD, "role": "admin"}),
            "role",
        ),
        (
            json!({"email": "a@test.example", "password": PASSWORD, "id": "x"}),
            "id",
        ),
        (json!({"email": 42, "password": PASSWORD}), "email"),
        (
            json!({"email": "a@test.example", "password": PASSWORD, "display_name": "x".repeat(101)}),
            "display_name",
        ),
        (json!(["a@test.example", PASSWORD]), "body"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(
            app.post("/v1/auth/register", None, body.clone()).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(field_of(&problem), field, "{body}");
    }
    // Nothing was half-written by any of them.
    assert!(app
        .store()
        .await
        .account_by_email("a@test.example")
        .await
        .unwrap()
        .is_none());

    // 128 characters is the most, counted in characters.
    let long: String = "Les éléphants zébrés dansent sous la pluie d’été à Zürich, mangeant des crêpes flambées près du lac Léman ; ça sentait l’œillet, 1998 — fin."
        .chars()
        .take(128)
        .collect();
    assert_eq!(long.chars().count(), 128);
    assert!(long.len() > 128);
    let ok = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "long@test.example", "password": long}),
        )
        .await;
    assert_eq!(ok.status(), 201);

    app.reader("taken@test.example").await;
    let again = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "TAKEN@test.example", "password": PASSWORD}),
        )
        .await;
    assert_problem(again, 409, "email_taken").await;
}

#[tokio::test]
async fn registration_can_be_closed() {
    let app = TestApp::spawn_with(&[("PAYWALL_REGISTRATION", "closed")]).await;
    let response = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "a@test.example", "password": PASSWORD}),
        )
        .await;
    assert_problem(response, 403, "registration_closed").await;
    // Admins still sign in.
    app.admin_token().await;
}

// ASVS 5.0 V6.3.8: the same answer for an unknown email and a wrong password.
#[tokio::test]
async fn login_failures_say_the_same_thing() {
    let app = TestApp::spawn().await;
    let (id, _) = app.reader("login@test.example").await;
    let unknown = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "nobody@test.example", "password": PASSWORD}),
        )
        .await;
    let unknown = assert_problem(unknown, 401, "invalid_credentials").await;
    let wrong = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "login@test.example", "password": "wrong-password-123"}),
        )
        .await;
    let wrong = assert_problem(wrong, 401, "invalid_credentials").await;
    assert_eq!(unknown, wrong);
    for body in [
        json!({"email": "not an email", "password": PASSWORD}),
        json!({"email": "login@test.example", "password": ""}),
        json!({"email": "login@test.example", "password": "x".repeat(500)}),
    ] {
        assert_problem(
            app.post("/v1/auth/login", None, body).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_problem(
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": "login@test.example"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    app.store()
        .await
        .set_status(&id, "suspended", now())
        .await
        .unwrap();
    let suspended = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "login@test.example", "password": PASSWORD}),
        )
        .await;
    assert_problem(suspended, 403, "account_suspended").await;
    // A wrong password on a suspended account reveals nothing about the suspension.
    let wrong = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "login@test.example", "password": "wrong-password-123"}),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn the_admin_is_bootstrapped_once_from_the_environment() {
    let app = TestApp::spawn().await;
    let pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(pair["account"]["role"], "admin");
    // Without the variables, no admin is made.
    let bare =
        TestApp::spawn_with(&[("PAYWALL_ADMIN_EMAIL", ""), ("PAYWALL_ADMIN_PASSWORD", "")]).await;
    assert!(!bare.store().await.active_admin_exists().await.unwrap());
}
