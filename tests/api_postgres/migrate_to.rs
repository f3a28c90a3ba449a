//! `paywall migrate-to`: a SQLite deployment moves to PostgreSQL with everything it
//! holds: accounts and their passwords, sessions, subscriptions, articles, the audit
//! log, meters and gifts. The copy is refused into a database that holds data.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

fn migrate_to(source: &str, target: &str) -> (i32, String, String) {
    cli(source, &["migrate-to", target])
}

async fn json_of(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_moves_to_postgresql_with_everything_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("before.db").display());
    let target = TestDb::fresh(dir.path(), "after");

    // A SQLite deployment with some life in it.
    let app = TestApp::start(tempfile::tempdir().unwrap(), sqlite_url.clone(), &[]).await;
    let admin = app.admin_token().await;
    for (slug, access) in [
        ("open", "free"),
        ("counted", "metered"),
        ("members", "subscribers"),
    ] {
        app.article(
            &admin,
            json!({"title": format!("Article {slug}"), "slug": slug, "body": long_body(5),
                   "section": "news", "access": access, "status": "published",
                   "teaser_ratio": if slug == "members" { json!(0.3) } else { json!(null) }}),
        )
        .await;
    }
    let (reader_id, reader) = app.reader("moving@test.example").await;
    let subscribed = app
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{reader_id}/subscription"),
            Some(&admin),
            Some(json!({"plan": "digital", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(subscribed.status(), 200);
    let gift: Value = app
        .post("/v1/articles/members/gifts", Some(&reader), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let anonymous = app.get("/v1/articles/counted", None).await;
    let meter_id = anonymous.headers()["paywall-meter"]
        .to_str()
        .unwrap()
        .to_string();

    let articles_before = json_of(&app, "/v1/articles", None).await;
    let members_before = json_of(&app, "/v1/admin/articles/members", Some(&admin)).await;
    let accounts_before = json_of(&app, "/v1/admin/accounts", Some(&admin)).await;
    let audit_before = json_of(&app, "/v1/admin/audit", Some(&admin)).await;
    drop(app);

    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| migrate_to(&sqlite_url, &target.url));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("accounts: 2 row(s) copied"), "{stdout}");
    assert!(stdout.contains("articles: 3 row(s) copied"), "{stdout}");
    // The anonymous read counted on its new meter id and on its address's daily cap.
    assert!(stdout.contains("meter_reads: 2 row(s) copied"), "{stdout}");
    assert!(stdout.contains("gifts: 1 row(s) copied"), "{stdout}");

    // A second copy would mix two databases: refused, nothing written.
    let (code, _, stderr) = tokio::task::block_in_place(|| migrate_to(&sqlite_url, &target.url));
    assert_eq!(code, 1);
    assert!(stderr.contains("already holds"), "{stderr}");
    // Only SQLite to PostgreSQL.
    let (code, _, stderr) = tokio::task::block_in_place(|| migrate_to(&target.url, &sqlite_url));
    assert_eq!(code, 1);
    assert!(stderr.contains("SQLite"), "{stderr}");

    let app = TestApp::start(tempfile::tempdir().unwrap(), target.url.clone(), &[]).await;
    // Sessions came along: the reader's token from before still works.
    let me = json_of(&app, "/v1/me", Some(&reader)).await;
    assert_eq!(me["subscription"]["active"], true);
    // And so did the password hashes.
    app.login("moving@test.example", PASSWORD).await;
    let admin = app.admin_token().await;

    assert_eq!(json_of(&app, "/v1/articles", None).await, articles_before);
    assert_eq!(
        json_of(&app, "/v1/admin/articles/members", Some(&admin)).await,
        members_before
    );
    assert_eq!(
        json_of(&app, "/v1/admin/accounts", Some(&admin)).await,
        accounts_before
    );
    let audit_after = json_of(&app, "/v1/admin/audit", Some(&admin)).await;
    assert_eq!(
        audit_after["items"].as_array().unwrap()[..],
        audit_before["items"].as_array().unwrap()[..],
        "the audit log moved (the new sign-in adds nothing there)"
    );

    // The meter remembers what it counted; the gift still opens its article.
    let counted = app
        .client
        .get(app.url("/v1/articles/counted"))
        .header("Paywall-Meter", &meter_id)
        .send()
        .await
        .unwrap();
    let counted: Value = counted.json().await.unwrap();
    assert_eq!(counted["meter"]["used"], 1);
    let gifted = json_of(
        &app,
        &format!(
            "/v1/articles/members?gift={}",
            gift["token"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(gifted["truncated"], false);
}

#[test]
fn a_mistyped_source_is_refused_and_no_file_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let target = TestDb::fresh(dir.path(), "target");
    let missing = dir.path().join("mistyped.db");
    let (code, stdout, stderr) =
        migrate_to(&format!("sqlite://{}", missing.display()), &target.url);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!missing.exists(), "an empty database was made");
}
