//! Password resets: by mail through a local SMTP sink, and by admin-issued links.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp::SmtpSink;

fn token_in(mail: &str) -> String {
    let start = mail
        .find("reset-password?token=")
        .expect("a reset link in the mail")
        + "reset-password?token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

// ASVS 5.0 V6.4.1 (random, single use, short-lived), V6.4.3, V6.3.8 (no mail and the
// same answer for unknown addresses), V7.4.3 (every session ends).
#[tokio::test]
async fn a_reset_mail_carries_a_working_single_use_link() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn_with(&[
        ("PAYWALL_SMTP_URL", &sink.url),
        ("PAYWALL_MAIL_FROM", "Newsroom <news@test.example>"),
        ("PAYWALL_PUBLIC_URL", "https://news.test.example/"),
    ])
    .await;
    let (_, session) = app.reader("forgot@test.example").await;

    // Unknown addresses get the same answer and no mail.
    let unknown = app
        .post(
            "/v1/auth/password-reset/request",
            None,
            json!({"email": "nobody@test.example"}),
        )
        .await;
    assert_eq!(unknown.status(), 202);
    let known = app
        .post(
            "/v1/auth/password-reset/request",
            None,
            json!({"email": "Forgot@Test.example"}),
        )
        .await;
    assert_eq!(known.status(), 202);
    let mail = sink.wait_for(0);
    assert!(mail.contains("forgot@test.example"), "{mail}");
    for header in [
        "Message-ID: <",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Date: ",
    ] {
        assert!(mail.contains(header), "{header} missing in\n{mail}");
    }
    assert!(mail.contains("news@test.example"));
    assert!(
        mail.contains("https://news.test.example/reset-password?token="),
        "{mail}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(sink.count(), 1, "nothing was sent for the unknown address");
    let token = token_in(&mail);

    let weak = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"token": token, "new_password": "12345678"}),
        )
        .await;
    let problem = assert_problem(weak, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "new_password");
    let done = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"token": token, "new_password": "fresh-start-Chausson-1855"}),
        )
        .await;
    assert_eq!(done.status(), 204);
    assert_problem(
        app.get("/v1/me", Some(&session)).await,
        401,
        "invalid_token",
    )
    .await;
    app.login("forgot@test.example", "fresh-start-Chausson-1855")
        .await;
    let again = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"token": token, "new_password": "another-one-Chabrier-1841"}),
        )
        .await;
    assert_problem(again, 401, "invalid_token").await;
}

#[tokio::test]
async fn reset_links_expire_and_refuse_garbage() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, _) = app.reader("late@test.example").await;
    // An admin-issued link, used after its hour: arranged by storing one already expired.
    let (token, digest) = paywall::auth::tokens::new_opaque_token();
    app.store()
        .await
        .create_password_reset(&id, &digest, now() - 1, None, now() - 3_601)
        .await
        .unwrap();
    let expired = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"token": token, "new_password": "too-late-Roussel-1869"}),
        )
        .await;
    assert_problem(expired, 401, "invalid_token").await;
    for body in [
        json!({"token": "made-up", "new_password": "whatever-Debussy-1862"}),
        json!({"token": "", "new_password": "whatever-Debussy-1862"}),
    ] {
        assert_problem(
            app.post("/v1/auth/password-reset", None, body).await,
            401,
            "invalid_token",
        )
        .await;
    }
    assert_problem(
        app.post("/v1/auth/password-reset", None, json!({"token": "x"}))
            .await,
        422,
        "validation_failed",
    )
    .await;

    let issued: Value = app
        .request(
            Method::POST,
            &format!("/v1/admin/accounts/{id}/password-reset"),
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let token = issued["token"].as_str().unwrap();
    assert!(issued["url"].as_str().unwrap().contains(token));
    let done = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"token": token, "new_password": "in-time-Massenet-1842"}),
        )
        .await;
    assert_eq!(done.status(), 204);
    app.login("late@test.example", "in-time-Massenet-1842")
        .await;
}

// ASVS 5.0 V6.1.1 and V6.3.1: anti-automation on registration and recovery.
#[tokio::test]
async fn reset_requests_and_registrations_are_throttled_per_address() {
    let app = TestApp::spawn_with(&[("PAYWALL_SIGNUPS_PER_ADDRESS_PER_HOUR", "3")]).await;
    // A bad body counts against the allowance too: throttling comes first.
    assert_problem(
        app.post("/v1/auth/password-reset/request", None, json!({}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    for i in 0..2 {
        let response = app
            .post(
                "/v1/auth/password-reset/request",
                None,
                json!({"email": format!("a{i}@test.example")}),
            )
            .await;
        assert_eq!(response.status(), 202);
    }
    let limited = app
        .post(
            "/v1/auth/password-reset/request",
            None,
            json!({"email": "a@test.example"}),
        )
        .await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_problem(limited, 429, "rate_limited").await;
    let register = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "new@test.example", "password": PASSWORD}),
        )
        .await;
    assert_problem(register, 429, "rate_limited").await;
}
