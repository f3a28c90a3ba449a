//! The server's log through a whole scenario: every request leaves a line with its id,
//! and no secret or article text ever reaches the log.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp::SmtpSink;

const BODY_PHRASE: &str = "Zanzibar-quartz-lantern confidential paragraph";
const NEW_PASSWORD: &str = "another-passphrase-Debussy-1862";

fn reset_token_in(mail: &str) -> String {
    let start = mail.find("token=").expect("a reset link in the mail") + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Runs sign-up, sign-in, refresh, a password change, a mailed reset, an admin-made
/// account with its reset link, an article, metered reads and a gift, and returns every
/// secret the scenario handled.
async fn scenario(app: &TestApp, sink: &SmtpSink) -> Vec<(&'static str, String)> {
    let mut secrets = vec![
        ("jwt secret", SECRET.to_string()),
        ("admin password", ADMIN_PASSWORD.to_string()),
        ("reader password", PASSWORD.to_string()),
        ("new password", NEW_PASSWORD.to_string()),
        ("article text", BODY_PHRASE.to_string()),
    ];
    let admin_pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin = token_of(&admin_pair);
    secrets.push(("admin access token", admin.clone()));
    secrets.push((
        "admin refresh token",
        admin_pair["refresh_token"].as_str().unwrap().to_string(),
    ));

    // A failed sign-in carries the attempted password.
    let failed = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": "wrong-guess-Fauré-1845"}),
        )
        .await;
    assert_eq!(failed.status(), 401);
    secrets.push(("failed password", "wrong-guess-Fauré-1845".to_string()));

    let (reader_id, reader) = app.reader("logged@test.example").await;
    secrets.push(("reader access token", reader.clone()));
    let pair = app.login("logged@test.example", PASSWORD).await;
    let refresh = pair["refresh_token"].as_str().unwrap().to_string();
    secrets.push(("reader refresh token", refresh.clone()));
    let refreshed = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    secrets.push(("rotated access token", token_of(&refreshed)));
    secrets.push((
        "rotated refresh token",
        refreshed["refresh_token"].as_str().unwrap().to_string(),
    ));
    let changed = app
        .post(
            "/v1/me/password",
            Some(&token_of(&refreshed)),
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(changed.status(), 204);

    // A mailed reset link, used.
    let requested = app
        .post(
            "/v1/auth/password-reset/request",
            None,
            json!({"email": "logged@test.example"}),
        )
        .await;
    assert_eq!(requested.status(), 202);
    let reset = reset_token_in(&sink.wait_for(0));
    secrets.push(("mailed reset token", reset.clone()));
    let used = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"token": reset, "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(used.status(), 204);

    // An account made by an admin without a password, with its reset link.
    let created = app
        .post(
            "/v1/admin/accounts",
            Some(&admin),
            json!({"email": "invited@test.example"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    secrets.push((
        "admin reset token",
        created["password_reset"]["token"]
            .as_str()
            .unwrap()
            .to_string(),
    ));
    secrets.push((
        "admin reset url",
        created["password_reset"]["url"]
            .as_str()
            .unwrap()
            .to_string(),
    ));

    // A subscriber, a metered article, an anonymous metered read and a gift.
    let subscribed = app
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{reader_id}/subscription"),
            Some(&admin),
            Some(json!({"plan": "digital", "expires_at": null})),
        )
        .await;
    assert_eq!(subscribed.status(), 200);
    let body = format!("{BODY_PHRASE}.\n\n{}", long_body(6));
    app.article(
        &admin,
        json!({"title": "Logged article", "slug": "logged-article", "body": body,
               "section": "news", "access": "metered", "status": "published"}),
    )
    .await;
    let anonymous = app.get("/v1/articles/logged-article", None).await;
    assert_eq!(anonymous.status(), 200);
    let meter_id = anonymous
        .headers()
        .get("paywall-meter")
        .expect("a meter id")
        .to_str()
        .unwrap()
        .to_string();
    secrets.push(("meter id", meter_id.clone()));
    let again = app
        .client
        .get(app.url("/v1/articles/logged-article"))
        .header("Paywall-Meter", &meter_id)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    let subscriber = token_of(&app.login("logged@test.example", PASSWORD).await);
    secrets.push(("subscriber access token", subscriber.clone()));
    let gift = app
        .post(
            "/v1/articles/logged-article/gifts",
            Some(&subscriber),
            json!({}),
        )
        .await;
    assert_eq!(gift.status(), 201);
    let gift: Value = gift.json().await.unwrap();
    let gift_token = gift["token"].as_str().unwrap().to_string();
    secrets.push(("gift token", gift_token.clone()));
    let opened = app
        .get(
            &format!("/v1/articles/logged-article?gift={gift_token}"),
            None,
        )
        .await;
    assert_eq!(opened.status(), 200);

    // A forged token is refused, and must not be echoed either.
    let forged = format!("{subscriber}x");
    let refused = app.get("/v1/me", Some(&forged)).await;
    assert_eq!(refused.status(), 401);
    secrets.push(("forged token", forged));

    let logout = app
        .request(Method::POST, "/v1/auth/logout", Some(&subscriber), None)
        .await;
    assert_eq!(logout.status(), 204);

    let store = app.store().await;
    for email in [ADMIN_EMAIL, "logged@test.example"] {
        let row = store.account_by_email(email).await.unwrap().unwrap();
        secrets.push(("password hash", row.password_hash.unwrap()));
    }
    secrets
}

async fn check_log(format: &str) {
    let sink = SmtpSink::start();
    let app = TestApp::spawn_logging(&[
        ("PAYWALL_LOG", "debug"),
        ("PAYWALL_LOG_FORMAT", format),
        ("PAYWALL_SMTP_URL", &sink.url),
        ("PAYWALL_MAIL_FROM", "news@test.example"),
        ("PAYWALL_PUBLIC_URL", "https://news.test.example/"),
    ])
    .await;
    let secrets = scenario(&app, &sink).await;
    // The last request's line is written after its answer; give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = app.log_text();

    let served: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("route=") || l.contains("\"route\":"))
        .collect();
    assert!(
        served.len() >= 15,
        "one line per request was logged ({format}):\n{log}"
    );
    assert!(
        served.iter().all(|l| l.contains("request_id")),
        "every request line carries its id:\n{log}"
    );
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is long enough to search for");
        assert!(
            !log.contains(secret.as_str()),
            "the {what} appears in the {format} log"
        );
    }
    // Hashes are also never logged in part.
    assert!(!log.contains("$argon2id$"), "a password hash in the log");
}

// ASVS 5.0 V16.2.5 (no secrets or sensitive data in logs), V16.2.1 (each entry tied
// to its request).
#[tokio::test]
async fn the_text_log_of_a_full_scenario_holds_no_secret() {
    check_log("text").await;
}

#[tokio::test]
async fn the_json_log_of_a_full_scenario_holds_no_secret() {
    check_log("json").await;
}
