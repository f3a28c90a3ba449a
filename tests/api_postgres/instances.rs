//! Two `paywall serve` processes on one PostgreSQL database, as behind a load balancer:
//! tokens, revocation and account changes hold across them at the next request, the
//! meter's limit holds exactly with reads spread over both, and an edit made through one
//! is served by the other within a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Two instances on one fresh database; the database outlives both.
struct Pair {
    a: TestApp,
    b: TestApp,
    _db: TestDb,
}

async fn pair(env: &[(&str, &str)]) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "shared");
    let a = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), env).await;
    let b = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), env).await;
    assert_ne!(a.base, b.base);
    Pair { a, b, _db: db }
}

async fn view(app: &TestApp, slug: &str, token: Option<&str>) -> Value {
    let response = app.get(&format!("/v1/articles/{slug}"), token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn tokens_from_one_instance_work_on_the_other_and_logout_holds_at_once() {
    let Pair { a, b, _db } = pair(&[]).await;
    let (_, token) = a.reader("roaming@test.example").await;
    assert_eq!(b.get("/v1/me", Some(&token)).await.status(), 200);

    // A refresh token issued by A is spent on B; the pair B returns works on A.
    let pair_a = a.login("roaming@test.example", PASSWORD).await;
    let refreshed = b
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": pair_a["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(
        a.get("/v1/me", Some(&token_of(&refreshed))).await.status(),
        200
    );
    // Presenting the spent token again, on A, is reuse: the session ends everywhere.
    let reused = a
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": pair_a["refresh_token"]}),
        )
        .await;
    assert_problem(reused, 401, "invalid_token").await;
    assert_problem(
        b.get("/v1/me", Some(&token_of(&refreshed))).await,
        401,
        "invalid_token",
    )
    .await;

    // Logout through A: B refuses the token on the very next request, though it had
    // just served it (and so holds the session in its cache). Again and again, so that
    // a cache that lagged behind even briefly would show.
    for round in 0..20 {
        let token = token_of(&b.login("roaming@test.example", PASSWORD).await);
        assert_eq!(
            b.get("/v1/me", Some(&token)).await.status(),
            200,
            "round {round}"
        );
        let out = a
            .request(Method::POST, "/v1/auth/logout", Some(&token), None)
            .await;
        assert_eq!(out.status(), 204);
        assert_problem(b.get("/v1/me", Some(&token)).await, 401, "invalid_token").await;
    }
    let out = a
        .request(Method::POST, "/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(out.status(), 204);
    assert_problem(b.get("/v1/me", Some(&token)).await, 401, "invalid_token").await;
}

#[tokio::test]
async fn suspension_and_subscription_changes_hold_on_the_other_instance_at_once() {
    let Pair { a, b, _db } = pair(&[]).await;
    let admin = a.admin_token().await;
    a.article(
        &admin,
        json!({"title": "For subscribers", "slug": "members", "body": long_body(6),
               "section": "s", "access": "subscribers", "status": "published"}),
    )
    .await;
    let (id, reader) = a.reader("member@test.example").await;
    // Warm B's view of this session and article.
    let before = view(&b, "members", Some(&reader)).await;
    assert_eq!(before["paywall"]["reason"], "subscription_required");

    let put = a
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{id}/subscription"),
            Some(&admin),
            Some(json!({"plan": "digital", "expires_at": null})),
        )
        .await;
    assert_eq!(put.status(), 200);
    let subscribed = view(&b, "members", Some(&reader)).await;
    assert_eq!(
        subscribed["truncated"], false,
        "B sees the subscription at once"
    );

    let ended = a
        .request(
            Method::DELETE,
            &format!("/v1/admin/accounts/{id}/subscription"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(ended.status(), 200);
    let lapsed = view(&b, "members", Some(&reader)).await;
    assert_eq!(lapsed["truncated"], true);
    assert_eq!(lapsed["paywall"]["reason"], "subscription_expired");

    let suspended = a
        .request(
            Method::PATCH,
            &format!("/v1/admin/accounts/{id}"),
            Some(&admin),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(suspended.status(), 200);
    assert_problem(b.get("/v1/me", Some(&reader)).await, 401, "invalid_token").await;
    let login = b
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "member@test.example", "password": PASSWORD}),
        )
        .await;
    assert_problem(login, 403, "account_suspended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_meter_limit_holds_exactly_with_parallel_reads_over_both_instances() {
    let pair = Arc::new(pair(&[("PAYWALL_METER_ANONYMOUS", "5")]).await);
    let admin = pair.a.admin_token().await;
    metered(&pair.a, &admin, 24).await;
    let first = pair.a.get("/v1/articles/m0", None).await;
    let id = first.headers()["paywall-meter"]
        .to_str()
        .unwrap()
        .to_string();
    // The id A signed is good on B (same secret); one credit more spent there.
    let second = pair
        .b
        .client
        .get(pair.b.url("/v1/articles/m1"))
        .header("Paywall-Meter", &id)
        .send()
        .await
        .unwrap();
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["meter"]["used"], 2);

    // Three credits remain; twenty-two new articles are asked for at once, half on each.
    let mut reads = Vec::new();
    for i in 2..24 {
        let (pair, id) = (pair.clone(), id.clone());
        reads.push(tokio::spawn(async move {
            let app = if i % 2 == 0 { &pair.a } else { &pair.b };
            let response = app
                .client
                .get(app.url(&format!("/v1/articles/m{i}")))
                .header("Paywall-Meter", &id)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let view: Value = response.json().await.unwrap();
            view["truncated"] == false
        }));
    }
    let mut granted = 0;
    for read in reads {
        granted += usize::from(read.await.unwrap());
    }
    assert_eq!(
        granted, 3,
        "exactly the remaining credits, across instances"
    );
    for app in [&pair.a, &pair.b] {
        let again = app
            .client
            .get(app.url("/v1/articles/m0"))
            .header("Paywall-Meter", &id)
            .send()
            .await
            .unwrap();
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["meter"]["used"], 5);
        assert_eq!(again["truncated"], false, "a counted article stays open");
    }
}

#[tokio::test]
async fn an_edit_through_one_instance_is_served_by_the_other_within_a_second() {
    let Pair { a, b, _db } = pair(&[]).await;
    let admin = a.admin_token().await;
    a.article(
        &admin,
        json!({"title": "First title", "slug": "edited", "body": "Old text.",
               "section": "s", "access": "free", "status": "published"}),
    )
    .await;
    // B caches the article.
    assert_eq!(view(&b, "edited", None).await["title"], "First title");
    let patched = a
        .request(
            Method::PATCH,
            "/v1/admin/articles/edited",
            Some(&admin),
            Some(json!({"title": "Second title", "body": "New text."})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let edited_at = Instant::now();
    loop {
        let seen = view(&b, "edited", None).await;
        if seen["title"] == "Second title" {
            assert_eq!(seen["body"], "New text.");
            break;
        }
        assert!(
            edited_at.elapsed() < Duration::from_secs(1),
            "B still served the old article after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A deletion through B is gone from A within a second too.
    let deleted = b
        .request(
            Method::DELETE,
            "/v1/admin/articles/edited",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let deleted_at = Instant::now();
    while a.get("/v1/articles/edited", None).await.status() != 404 {
        assert!(deleted_at.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sign_in_failures_are_one_allowance_over_both_instances() {
    let Pair { a, b, _db } = pair(&[("PAYWALL_LOGIN_MAX_FAILURES", "4")]).await;
    a.reader("guessed@test.example").await;
    async fn guess(app: &TestApp) -> reqwest::Response {
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": "guessed@test.example", "password": "wrong-guess-0000"}),
        )
        .await
    }
    // Four guesses in all, spread over both instances, then both refuse.
    for app in [&a, &b, &a, &b] {
        assert_problem(guess(app).await, 401, "invalid_credentials").await;
    }
    for app in [&a, &b] {
        assert_problem(guess(app).await, 429, "rate_limited").await;
    }
    // The throttled burst is audited once, whichever instance saw it.
    let admin = a.admin_token().await;
    let audit: Value = b
        .get("/v1/admin/audit?action=login.throttled", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    // Current-password checks share one allowance too.
    let (_, token) = a.reader("checked@test.example").await;
    let wrong = json!({"current_password": "wrong-guess-0000", "new_password": "another-passphrase-Debussy-1862"});
    for app in [&a, &b, &a, &b] {
        let response = app
            .post("/v1/me/password", Some(&token), wrong.clone())
            .await;
        assert_problem(response, 401, "invalid_credentials").await;
    }
    for app in [&b, &a] {
        let response = app
            .post("/v1/me/password", Some(&token), wrong.clone())
            .await;
        assert_problem(response, 429, "rate_limited").await;
    }
}

#[tokio::test]
async fn two_instances_starting_together_log_no_false_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "shared");
    let env = [("PAYWALL_LOG", "info")];
    let (a, b) = tokio::join!(
        TestApp::start_logging(tempfile::tempdir().unwrap(), db.url.clone(), &env),
        TestApp::start_logging(tempfile::tempdir().unwrap(), db.url.clone(), &env),
    );
    for app in [&a, &b] {
        assert_eq!(app.get("/healthz", None).await.status(), 200);
    }
    // Both have started (and logged their start) before they answer.
    for app in [&a, &b] {
        let log = app.log_text();
        assert!(log.contains("starting 2 workers"), "{log}");
        assert!(!log.contains("not an admin"), "{log}");
        assert!(!log.contains("_sqlx_migrations"), "{log}");
    }
    a.admin_token().await;
}

/// Charges lock the meters they count, not the table: a transaction that writes to
/// `meter_reads` (the ROW EXCLUSIVE lock every insert takes, which the table-wide lock
/// charges took before could not share) keeps no charge of either instance waiting,
/// and the meter stays exact.
#[tokio::test]
async fn charges_lock_their_meters_not_the_table() {
    let pair = pair(&[
        ("PAYWALL_METER_ANONYMOUS", "2"),
        ("PAYWALL_DB_ACQUIRE_TIMEOUT_SECS", "1"),
    ])
    .await;
    let admin = pair.a.admin_token().await;
    metered(&pair.a, &admin, 3).await;
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut holder = sqlx::AnyConnection::connect(&pair.a.db_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE meter_reads IN ROW EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();

    let started = Instant::now();
    let first = pair.a.get("/v1/articles/m0", None).await;
    assert_eq!(first.status(), 200);
    let id = first.headers()["paywall-meter"]
        .to_str()
        .unwrap()
        .to_string();
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        (first["truncated"].clone(), first["meter"]["used"].clone()),
        (json!(false), json!(1))
    );
    let on_b = |slug: &'static str| {
        pair.b
            .client
            .get(pair.b.url(&format!("/v1/articles/{slug}")))
            .header("Paywall-Meter", id.clone())
            .send()
    };
    let second: Value = on_b("m1").await.unwrap().json().await.unwrap();
    assert_eq!(
        (second["truncated"].clone(), second["meter"]["used"].clone()),
        (json!(false), json!(2))
    );
    let third: Value = on_b("m2").await.unwrap().json().await.unwrap();
    assert_eq!(third["truncated"], true, "the limit holds: {third}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "no charge waited for the table"
    );
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
}
