//! Every cell of the contract's access table, over HTTP, plus the teaser itself.

use serde_json::{json, Value};

use crate::helpers::*;

const BODY: &str = "Le premier paragraphe, court.\r\n\r\nLe deuxième paragraphe : « l’été » — suite.   \n\n\n\nLe troisième, plus long, réservé à ceux qui ont accès à l’article entier. 東京 😀.";

struct Readers {
    anonymous: Option<String>,
    reader: String,
    expired: String,
    subscriber: String,
    editor: String,
    admin: String,
}

async fn readers(app: &TestApp) -> Readers {
    let store = app.store().await;
    let (_, reader) = app.reader("reader@test.example").await;
    let (expired_id, expired) = app.reader("expired@test.example").await;
    let (subscriber_id, subscriber) = app.reader("subscriber@test.example").await;
    let (editor_id, editor) = app.reader("editor@test.example").await;
    let day = 86_400;
    store
        .set_subscription(&expired_id, "digital", now() - 60 * day, Some(now() - day))
        .await
        .unwrap();
    store
        .set_subscription(
            &subscriber_id,
            "digital",
            now() - day,
            Some(now() + 30 * day),
        )
        .await
        .unwrap();
    store.set_role(&editor_id, "editor", now()).await.unwrap();
    Readers {
        anonymous: None,
        reader,
        expired,
        subscriber,
        editor,
        admin: app.admin_token().await,
    }
}

async fn read(app: &TestApp, slug: &str, token: Option<&str>) -> Value {
    let response = app.get(&format!("/v1/articles/{slug}"), token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["vary"], "Authorization, Cookie");
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    response.json().await.unwrap()
}

fn full_text() -> String {
    "Le premier paragraphe, court.\n\nLe deuxième paragraphe : « l’été » — suite.\n\nLe troisième, plus long, réservé à ceux qui ont accès à l’article entier. 東京 😀.".to_string()
}

fn assert_full(view: &Value, who: &str, access: &str) {
    assert_eq!(view["body"], full_text(), "{who} reading {access}");
    assert_eq!(view["truncated"], false, "{who} reading {access}");
    assert_eq!(view["percent_left"], 0.0);
    assert!(view["paywall"].is_null());
}

fn assert_teaser(view: &Value, who: &str, access: &str, reason: &str) {
    assert_eq!(view["truncated"], true, "{who} reading {access}");
    assert_eq!(view["paywall"]["reason"], reason, "{who} reading {access}");
    let body = view["body"].as_str().unwrap();
    assert!(full_text().starts_with(body));
    assert!(body.len() < full_text().len());
    assert!(!body.contains("troisième"), "gated text leaked to {who}");
}

// With every meter at zero, so that the metered column shows its "else" half; the
// meter's credit is tested in meter.rs.
#[tokio::test]
async fn every_cell_of_the_access_table() {
    let app = TestApp::spawn_with(&[
        ("PAYWALL_METER_ANONYMOUS", "0"),
        ("PAYWALL_METER_REGISTERED", "0"),
        ("PAYWALL_METER_UNIDENTIFIED_PER_DAY", "0"),
    ])
    .await;
    let r = readers(&app).await;
    let admin = r.admin.clone();
    for access in ["free", "registered", "metered", "subscribers"] {
        app.article(
            &admin,
            json!({"title": format!("Article {access}"), "slug": access, "body": BODY,
                   "section": "news", "access": access, "status": "published"}),
        )
        .await;
    }
    // For each reader: the reason of the teaser for free, registered, metered and
    // subscribers articles, or None for the full text.
    type Row<'a> = (&'a str, Option<&'a str>, [Option<&'a str>; 4]);
    let cells: [Row; 6] = [
        (
            "anonymous",
            r.anonymous.as_deref(),
            [
                None,
                Some("login_required"),
                Some("meter_exhausted"),
                Some("subscription_required"),
            ],
        ),
        (
            "reader",
            Some(&r.reader),
            [
                None,
                None,
                Some("meter_exhausted"),
                Some("subscription_required"),
            ],
        ),
        (
            "expired subscriber",
            Some(&r.expired),
            [
                None,
                None,
                Some("meter_exhausted"),
                Some("subscription_expired"),
            ],
        ),
        ("subscriber", Some(&r.subscriber), [None, None, None, None]),
        ("editor", Some(&r.editor), [None, None, None, None]),
        ("admin", Some(&r.admin), [None, None, None, None]),
    ];
    for (who, token, expected) in cells {
        for (access, reason) in ["free", "registered", "metered", "subscribers"]
            .into_iter()
            .zip(expected)
        {
            let view = read(&app, access, token).await;
            match reason {
                None => assert_full(&view, who, access),
                Some(reason) => assert_teaser(&view, who, access, reason),
            }
        }
    }
}

#[tokio::test]
async fn the_teaser_percent_and_message_are_exact() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let created = app
        .article(
            &admin,
            json!({"title": "Marker", "slug": "marker", "section": "news", "access": "subscribers",
                   "status": "published",
                   "body": "Intro one.\n\nIntro two.\n\n<!--  PayWall -->\n\nSecret part."}),
        )
        .await;
    assert_eq!(created["teaser_chars"], 22);
    assert_eq!(created["total_chars"], 36);
    assert_eq!(created["percent_left"], 38.89);
    assert_eq!(created["body"], "Intro one.\n\nIntro two.\n\nSecret part.");

    let view = read(&app, "marker", None).await;
    assert_eq!(view["body"], "Intro one.\n\nIntro two.");
    assert_eq!(view["percent_left"], 38.89);
    assert_eq!(
        view["paywall"]["message"],
        "You have 38.89% of this article left to read. The following is for subscribers only."
    );
    assert!(view["meter"].is_null());

    // Registered-only wording; the ratio cut without a marker (10 + 2 + 10 of 34 chars).
    app.article(
        &admin,
        json!({"title": "Ratio", "slug": "ratio", "section": "news", "access": "registered",
               "status": "published", "teaser_ratio": 0.7,
               "body": "aaaa aaaaa\n\nbbbb bbbbb\n\ncccc ccccc"}),
    )
    .await;
    let view = read(&app, "ratio", None).await;
    assert_eq!(view["body"], "aaaa aaaaa\n\nbbbb bbbbb");
    assert_eq!(view["percent_left"], 35.29);
    assert_eq!(
        view["paywall"]["message"],
        "You have 35.29% of this article left to read. The following is for registered readers only."
    );

    // Subscribers get the full text, marker removed.
    let (id, token) = app.reader("sub@test.example").await;
    app.store()
        .await
        .set_subscription(&id, "digital", now(), None)
        .await
        .unwrap();
    let view = read(&app, "marker", Some(&token)).await;
    assert_eq!(view["body"], "Intro one.\n\nIntro two.\n\nSecret part.");
    assert!(!view.to_string().contains("PayWall"));
}

#[tokio::test]
async fn the_session_cookie_counts_like_the_header() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(
        &admin,
        json!({"title": "Reg", "slug": "reg", "body": BODY, "section": "news",
               "access": "registered", "status": "published"}),
    )
    .await;
    let (_, token) = app.reader("cookie@test.example").await;
    let view: Value = app
        .client
        .get(app.url("/v1/articles/reg"))
        .header("cookie", format!("paywall_session={token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_full(&view, "cookie reader", "registered");
    let response = app
        .client
        .get(app.url("/v1/articles/reg"))
        .header("cookie", "paywall_session=forged.token.value")
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "invalid_token").await;
}

// ASVS 5.0 V7.4.2: a suspended account's sessions stop at once. Changes made through
// this instance are seen on the very next request.
#[tokio::test]
async fn changes_to_an_account_apply_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(
        &admin,
        json!({"title": "Sub", "slug": "sub", "body": BODY, "section": "news",
               "access": "subscribers", "status": "published"}),
    )
    .await;
    let (id, token) = app.reader("changes@test.example").await;
    let subscription = format!("/v1/admin/accounts/{id}/subscription");
    assert_teaser(
        &read(&app, "sub", Some(&token)).await,
        "reader",
        "subscribers",
        "subscription_required",
    );
    let put = app
        .request(
            reqwest::Method::PUT,
            &subscription,
            Some(&admin),
            Some(json!({"plan": "digital"})),
        )
        .await;
    assert_eq!(put.status(), 200);
    assert_full(
        &read(&app, "sub", Some(&token)).await,
        "new subscriber",
        "subscribers",
    );
    app.request(reqwest::Method::DELETE, &subscription, Some(&admin), None)
        .await;
    assert_teaser(
        &read(&app, "sub", Some(&token)).await,
        "lapsed",
        "subscribers",
        "subscription_expired",
    );
    app.request(
        reqwest::Method::PATCH,
        &format!("/v1/admin/accounts/{id}"),
        Some(&admin),
        Some(json!({"status": "suspended"})),
    )
    .await;
    assert_problem(
        app.get("/v1/articles/sub", Some(&token)).await,
        401,
        "invalid_token",
    )
    .await;
}

// Another instance (here: another process writing to the same database) changes an
// account: each instance caches a session's state for at most a second.
#[tokio::test]
async fn changes_made_elsewhere_are_seen_within_a_second() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(
        &admin,
        json!({"title": "Sub", "slug": "sub", "body": BODY, "section": "news",
               "access": "subscribers", "status": "published"}),
    )
    .await;
    let (id, token) = app.reader("elsewhere@test.example").await;
    assert_teaser(
        &read(&app, "sub", Some(&token)).await,
        "reader",
        "subscribers",
        "subscription_required",
    );
    let store = app.store().await;
    store
        .set_subscription(&id, "digital", now(), None)
        .await
        .unwrap();
    let changed = std::time::Instant::now();
    loop {
        let view = read(&app, "sub", Some(&token)).await;
        if view["truncated"] == false {
            break;
        }
        assert!(
            changed.elapsed() < std::time::Duration::from_millis(1_500),
            "still stale after 1.5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store.set_status(&id, "suspended", now()).await.unwrap();
    let changed = std::time::Instant::now();
    while app.get("/v1/articles/sub", Some(&token)).await.status() == 200 {
        assert!(
            changed.elapsed() < std::time::Duration::from_millis(1_500),
            "suspension unseen after 1.5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
