//! The meter and gift links over HTTP, and the meter's periods and pruning through the
//! store with an injected clock.

use reqwest::Response;
use serde_json::{json, Value};

use crate::helpers::*;

fn set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("paywall_meter="))
        .map(str::to_string)
}

async fn read_with(
    app: &TestApp,
    slug: &str,
    header: Option<(&str, &str)>,
) -> (Value, Option<String>, Option<String>) {
    let mut request = app.client.get(app.url(&format!("/v1/articles/{slug}")));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response);
    let id = response
        .headers()
        .get("paywall-meter")
        .map(|v| v.to_str().unwrap().to_string());
    (response.json().await.unwrap(), cookie, id)
}

fn next_month_start() -> String {
    let resets = paywall::paywall::meter::period_resets_at(time::OffsetDateTime::now_utc());
    resets
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn the_anonymous_meter_counts_on_the_server_with_a_cookie() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    metered(&app, &admin, 5).await;

    let (first, cookie, id) = read_with(&app, "m0", None).await;
    let cookie = cookie.expect("a meter cookie on the first metered read");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=31536000"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let id = id.expect("the same id in the Paywall-Meter header");
    assert!(cookie.starts_with(&format!("paywall_meter={id};")));
    assert_eq!(first["truncated"], false);
    assert_eq!(
        first["meter"],
        json!({"limit": 3, "used": 1, "remaining": 2, "resets_at": next_month_start()})
    );

    let jar = format!("paywall_meter={id}");
    let with_cookie = |slug: &'static str| {
        let jar = jar.clone();
        let app = &app;
        async move { read_with(app, slug, Some(("cookie", &jar))).await }
    };
    let (second, new_cookie, _) = with_cookie("m1").await;
    assert!(new_cookie.is_none(), "a valid id is kept");
    assert_eq!(second["meter"]["used"], 2);
    let (third, _, _) = with_cookie("m2").await;
    assert_eq!(
        (
            third["truncated"].as_bool(),
            third["meter"]["remaining"].as_u64()
        ),
        (Some(false), Some(0))
    );
    let (fourth, _, _) = with_cookie("m3").await;
    assert_eq!(fourth["truncated"], true);
    assert_eq!(fourth["paywall"]["reason"], "meter_exhausted");
    assert_eq!(
        fourth["meter"],
        json!({"limit": 3, "used": 3, "remaining": 0, "resets_at": next_month_start()})
    );
    assert!(!fourth["body"].as_str().unwrap().contains("Paragraphe 4"));
    // Re-reading a counted article is free.
    let (again, _, _) = with_cookie("m0").await;
    assert_eq!(again["truncated"], false);
    assert_eq!(again["meter"]["used"], 3);
}

#[tokio::test]
async fn the_meter_id_also_travels_in_a_header() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    metered(&app, &admin, 4).await;
    let (_, _, id) = read_with(&app, "m0", None).await;
    let id = id.unwrap();
    for slug in ["m1", "m2"] {
        let (view, cookie, echoed) = read_with(&app, slug, Some(("paywall-meter", &id))).await;
        assert_eq!(view["truncated"], false);
        assert!(cookie.is_none());
        assert_eq!(echoed.as_deref(), Some(id.as_str()));
    }
    let (view, _, _) = read_with(&app, "m3", Some(("paywall-meter", &id))).await;
    assert_eq!(view["paywall"]["reason"], "meter_exhausted");
}

#[tokio::test]
async fn tampered_ids_are_replaced_never_an_error() {
    // Every read without a valid id costs the address's cap: leave room for all of them.
    let app = TestApp::spawn_with(&[("PAYWALL_METER_UNIDENTIFIED_PER_DAY", "100")]).await;
    let admin = app.admin_token().await;
    metered(&app, &admin, 2).await;
    let (_, _, id) = read_with(&app, "m0", None).await;
    let id = id.unwrap();
    let mut tampered = id.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for value in [tampered.as_str(), "garbage", "", "a.b", &"x".repeat(500)] {
        for name in ["paywall-meter", "cookie"] {
            let header = if name == "cookie" {
                format!("paywall_meter={value}")
            } else {
                value.to_string()
            };
            let (view, cookie, echoed) = read_with(&app, "m1", Some((name, &header))).await;
            let cookie = cookie.expect("a fresh id replaces an invalid one");
            assert!(!cookie.contains(&tampered));
            assert_ne!(echoed.as_deref(), Some(value));
            assert!(view["meter"].is_object());
        }
    }
}

#[tokio::test]
async fn readers_without_a_meter_id_are_capped_per_address_and_day() {
    let app = TestApp::spawn_with(&[("PAYWALL_METER_UNIDENTIFIED_PER_DAY", "4")]).await;
    let admin = app.admin_token().await;
    metered(&app, &admin, 6).await;
    let mut id_of_first = None;
    for i in 0..4 {
        let (view, cookie, id) = read_with(&app, &format!("m{i}"), None).await;
        assert_eq!(view["truncated"], false, "read {i}");
        assert!(cookie.is_some());
        assert_eq!(view["meter"]["used"], 1, "each new id has its own month");
        id_of_first = id_of_first.or(id);
    }
    let (view, _, _) = read_with(&app, "m4", None).await;
    assert_eq!(view["truncated"], true);
    assert_eq!(view["paywall"]["reason"], "meter_exhausted");
    assert_eq!(view["meter"]["limit"], 4);
    assert_eq!(view["meter"]["remaining"], 0);
    // Without an id, a re-read costs the cap like a first read, and no new id comes
    // with the refusal; an identified reader is not capped.
    let (again, cookie, none) = read_with(&app, "m0", None).await;
    assert_eq!(again["truncated"], true);
    assert_eq!(again["paywall"]["reason"], "meter_exhausted");
    assert!(
        cookie.is_none() && none.is_none(),
        "no id handed out with a refusal"
    );
    let (own, _, _) = read_with(&app, "m5", Some(("paywall-meter", &id_of_first.unwrap()))).await;
    assert_eq!(own["truncated"], false);
}

#[tokio::test]
async fn parallel_reads_at_the_edge_get_exactly_the_remaining_credits() {
    let app = std::sync::Arc::new(TestApp::spawn_with(&[("PAYWALL_METER_ANONYMOUS", "5")]).await);
    let admin = app.admin_token().await;
    metered(&app, &admin, 20).await;
    let (_, _, id) = read_with(&app, "m0", None).await;
    let id = id.unwrap();
    read_with(&app, "m1", Some(("paywall-meter", &id))).await;
    // Three credits remain; eighteen new articles are asked for at once.
    let mut reads = Vec::new();
    for i in 2..20 {
        let (app, id) = (app.clone(), id.clone());
        reads.push(tokio::spawn(async move {
            let (view, _, _) =
                read_with(&app, &format!("m{i}"), Some(("paywall-meter", &id))).await;
            view["truncated"] == false
        }));
    }
    let mut granted = 0;
    for read in reads {
        granted += usize::from(read.await.unwrap());
    }
    assert_eq!(granted, 3, "exactly the remaining credits");
    let (after, _, _) = read_with(&app, "m0", Some(("paywall-meter", &id))).await;
    assert_eq!(after["meter"]["used"], 5);
}

#[tokio::test]
async fn reader_accounts_have_their_own_meter_and_subscribers_none() {
    let app = TestApp::spawn_with(&[("PAYWALL_METER_REGISTERED", "2")]).await;
    let admin = app.admin_token().await;
    metered(&app, &admin, 4).await;
    let (_, reader) = app.reader("metered@test.example").await;
    for slug in ["m0", "m1"] {
        let view: Value = app
            .get(&format!("/v1/articles/{slug}"), Some(&reader))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(view["truncated"], false);
        assert_eq!(view["meter"]["limit"], 2);
    }
    let response = app.get("/v1/articles/m2", Some(&reader)).await;
    assert!(
        set_cookie(&response).is_none(),
        "accounts get no meter cookie"
    );
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["paywall"]["reason"], "meter_exhausted");
    assert_eq!(view["meter"]["used"], 2);

    let (sub_id, subscriber) = app.reader("sub@test.example").await;
    app.store()
        .await
        .set_subscription(&sub_id, "digital", now(), None)
        .await
        .unwrap();
    let (editor_id, editor) = app.reader("ed@test.example").await;
    app.store()
        .await
        .set_role(&editor_id, "editor", now())
        .await
        .unwrap();
    for token in [&subscriber, &editor, &admin] {
        for slug in ["m0", "m1", "m2", "m3"] {
            let response = app.get(&format!("/v1/articles/{slug}"), Some(token)).await;
            assert!(set_cookie(&response).is_none());
            let view: Value = response.json().await.unwrap();
            assert_eq!(view["truncated"], false);
            assert!(view["meter"].is_null(), "never metered");
        }
    }
    // Articles that are not metered never consult the meter.
    app.article(&admin, json!({"title": "Free", "slug": "free", "body": "a b", "section": "s", "access": "free", "status": "published"}))
        .await;
    let (view, cookie, id) = read_with(&app, "free", None).await;
    assert!(view["meter"].is_null() && cookie.is_none() && id.is_none());
}

#[tokio::test]
async fn gifts_open_their_article_for_anyone() {
    let app = TestApp::spawn_with(&[
        ("PAYWALL_GIFTS_PER_MONTH", "2"),
        ("PAYWALL_PUBLIC_URL", "https://news.test.example"),
    ])
    .await;
    let admin = app.admin_token().await;
    for (slug, access) in [
        ("gated", "subscribers"),
        ("other", "subscribers"),
        ("counted", "metered"),
    ] {
        app.article(&admin, json!({"title": slug, "slug": slug, "body": long_body(4), "section": "s", "access": access, "status": "published"}))
            .await;
    }
    let (id, subscriber) = app.reader("giver@test.example").await;
    app.store()
        .await
        .set_subscription(&id, "digital", now(), None)
        .await
        .unwrap();
    let (_, reader) = app.reader("reader@test.example").await;

    assert_problem(
        app.post("/v1/articles/gated/gifts", None, json!({})).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.post("/v1/articles/gated/gifts", Some(&reader), json!({}))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post("/v1/articles/missing/gifts", Some(&subscriber), json!({}))
            .await,
        404,
        "not_found",
    )
    .await;

    let response = app
        .post("/v1/articles/gated/gifts", Some(&subscriber), json!({}))
        .await;
    assert_eq!(response.status(), 201);
    let gift: Value = response.json().await.unwrap();
    let token = gift["token"].as_str().unwrap();
    assert!(token.len() >= 40, "unguessable");
    assert_eq!(gift["article"], "gated");
    assert_eq!(
        gift["url"],
        format!("https://news.test.example/v1/articles/gated?gift={token}")
    );
    assert!(gift["expires_at"].is_string());

    // Anyone, the gift opens its article in full without a meter.
    let view: Value = app
        .get(&format!("/v1/articles/gated?gift={token}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["truncated"], false);
    assert!(view["meter"].is_null());
    let view: Value = app
        .get(&format!("/v1/articles/gated?gift={token}"), Some(&reader))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["truncated"], false);
    // Not another article, not tampered.
    let view: Value = app
        .get(&format!("/v1/articles/other?gift={token}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["paywall"]["reason"], "subscription_required");
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &token[..token.len() - 1]);
    for bad in [tampered.as_str(), "garbage", ""] {
        let view: Value = app
            .get(&format!("/v1/articles/gated?gift={bad}"), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(view["truncated"], true, "{bad}");
    }
    // Expired: a genuine token (signed with the service's secret) past its expiry.
    let keys = paywall::paywall::gifts::GiftKeys::new(&[SECRET.as_bytes()]);
    let article_id = app
        .store()
        .await
        .article_by_slug("gated")
        .await
        .unwrap()
        .unwrap()
        .meta
        .id;
    let expired = keys.issue(&article_id, now() - 1).unwrap();
    let view: Value = app
        .get(&format!("/v1/articles/gated?gift={}", expired.token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["truncated"], true, "expired gifts open nothing");

    // A gift of a metered article spends no credit.
    let counted: Value = app
        .post("/v1/articles/counted/gifts", Some(&subscriber), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let view: Value = app
        .get(
            &format!(
                "/v1/articles/counted?gift={}",
                counted["token"].as_str().unwrap()
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["truncated"], false);
    assert!(view["meter"].is_null());

    // The monthly quota.
    let over = app
        .post("/v1/articles/other/gifts", Some(&subscriber), json!({}))
        .await;
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 31 * 86_400);
    assert_problem(over, 429, "rate_limited").await;
}

#[tokio::test]
async fn periods_turn_at_the_month_boundary_and_finished_ones_are_pruned() {
    use paywall::paywall::meter::{Meter, MeterKey};
    use paywall::store::meter::ChargeRequest;
    use time::macros::datetime;
    let app = TestApp::spawn().await;
    let store = app.store().await;
    let charge = |at: time::OffsetDateTime, article: &str| ChargeRequest {
        meters: vec![Meter::new(&MeterKey::Anonymous("reader".into()), 2, at)],
        article_id: article.to_string(),
        now: at.unix_timestamp(),
    };
    // Years ahead of the real clock: the server prunes finished periods itself, at
    // start-up and every hour, by the real time, and must not take these rows first
    // (with a November already past, it did, racing this test's own prune).
    let late_november = datetime!(2099-11-30 23:59:59 UTC);
    let outcomes = store
        .charge_meters(
            &[
                charge(late_november, "a"),
                charge(late_november, "b"),
                charge(late_november, "c"),
                charge(late_november, "a"),
            ],
            false,
        )
        .await
        .unwrap();
    let credits: Vec<bool> = outcomes.iter().map(|o| o.credit).collect();
    assert_eq!(
        credits,
        [true, true, false, true],
        "two new articles, then a free re-read"
    );
    assert_eq!(outcomes[3].used, [2]);
    assert!(!outcomes[3].charged);
    // One second later it is December: a fresh period.
    let december = datetime!(2099-12-01 00:00:00 UTC);
    let outcome = store
        .charge_meters(&[charge(december, "c")], true)
        .await
        .unwrap();
    assert!(outcome[0].credit && outcome[0].charged);
    assert_eq!(outcome[0].used, [1]);
    // Pruning in December removes November's rows only.
    let pruned = store.prune_meter(december.unix_timestamp()).await.unwrap();
    assert_eq!(pruned, 2);
    let meter = Meter::new(&MeterKey::Anonymous("reader".into()), 2, december);
    assert_eq!(store.meter_used(&meter).await.unwrap(), 1);
    assert_eq!(
        store.prune_meter(december.unix_timestamp()).await.unwrap(),
        0
    );
}

// kill -9 while readers are being charged: after a restart, every charge a reader was
// answered for is still counted (the meter writer answers only after its batch commits).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_charging_loses_no_answered_charge() {
    const READERS: usize = 8;
    const ARTICLES: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "charges");
    let env = [
        ("PAYWALL_METER_ANONYMOUS", "1000"),
        ("PAYWALL_METER_UNIDENTIFIED_PER_DAY", "1000"),
    ];
    let mut app = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let records: Vec<_> = (0..ARTICLES + READERS)
        .map(|i| {
            let fields = paywall::store::ArticleFields {
                slug: format!("c{i}"),
                title: format!("Charged {i}"),
                standfirst: None,
                section: "s".into(),
                author: None,
                access: paywall::domain::AccessLevel::Metered,
                status: paywall::domain::ArticleStatus::Published,
                teaser_ratio: None,
                published_at: Some(now - 60),
            };
            let body = paywall::paywall::teaser::prepare(&long_body(2), 0.4).unwrap();
            paywall::store::ArticleRecord::new(fields, 0.4, body)
        })
        .collect();
    app.store()
        .await
        .insert_articles(&records, now)
        .await
        .unwrap();
    // Each reader gets an id, then reads new articles one after another until the
    // server is gone, keeping how many reads it was answered for in full.
    let mut readers = Vec::new();
    for r in 0..READERS {
        let (client, base) = (app.client.clone(), app.base.clone());
        let (view, _, id) = read_with(&app, &format!("c{r}"), None).await;
        assert_eq!(view["meter"]["used"], 1);
        let id = id.unwrap();
        readers.push(tokio::spawn(async move {
            let mut answered: u64 = 1;
            for k in READERS..READERS + ARTICLES {
                let slug = format!("c{}", READERS + (k - READERS + r * 71) % ARTICLES);
                let sent = client
                    .get(format!("{base}/v1/articles/{slug}"))
                    .header("paywall-meter", &id)
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                let Ok(view) = response.json::<Value>().await else {
                    break;
                };
                assert_eq!(view["truncated"], false, "{view}");
                answered += 1;
                assert_eq!(view["meter"]["used"], answered);
            }
            (id, answered)
        }));
    }
    app.kill_after(std::time::Duration::from_millis(800)).await;
    let mut answered = Vec::new();
    for reader in readers {
        answered.push(reader.await.unwrap());
    }
    let total: u64 = answered.iter().map(|(_, n)| n).sum();
    assert!(
        total > 2 * READERS as u64,
        "the load ran ({total} charged reads)"
    );
    drop(app);

    let app = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    for (r, (id, answered)) in answered.iter().enumerate() {
        // The reader's first article again: a free re-read, so the count is what the
        // database kept. The read cut off by the kill may have been counted too.
        let (view, _, _) = read_with(&app, &format!("c{r}"), Some(("paywall-meter", id))).await;
        let kept = view["meter"]["used"].as_u64().unwrap();
        assert!(
            kept == *answered || kept == answered + 1,
            "reader {r} was answered for {answered} charges, the meter kept {kept}"
        );
    }
    app.assert_database_intact().await;
}

/// A re-read of an article the meter has counted writes nothing: it is answered while
/// another connection holds the database's write lock, which a new charge waits for.
/// (The meter's writer reads the counts first while re-reads are part of its traffic, as
/// here after the first re-read; a batch of nothing but new charges skips that read.)
#[tokio::test]
async fn re_reads_of_counted_articles_need_no_write_lock() {
    let app = TestApp::spawn_with(&[("PAYWALL_DB_ACQUIRE_TIMEOUT_SECS", "1")]).await;
    let admin = app.admin_token().await;
    metered(&app, &admin, 3).await;
    let (_, _, id) = read_with(&app, "m0", None).await;
    let id = id.unwrap();
    let (view, _, _) = read_with(&app, "m0", Some(("paywall-meter", &id))).await;
    assert_eq!(view["meter"]["used"], 1, "{view}");
    // What keeps every charge out: SQLite's write lock, or on PostgreSQL a table lock
    // that no insert into the meter's table can pass.
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut holder = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    match crate::BACKEND {
        paywall::store::Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut holder)
                .await
                .unwrap();
        }
        paywall::store::Backend::Postgres => {
            sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
            sqlx::query("LOCK TABLE meter_reads IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut holder)
                .await
                .unwrap();
        }
    }

    let started = std::time::Instant::now();
    let (view, _, _) = read_with(&app, "m0", Some(("paywall-meter", &id))).await;
    assert_eq!(view["truncated"], false);
    assert_eq!(view["meter"]["used"], 1, "{view}");
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
    // A new article must be counted, and the lock keeps the charge out.
    let response = app
        .client
        .get(app.url("/v1/articles/m1"))
        .header("paywall-meter", &id)
        .send()
        .await
        .unwrap();
    assert_problem(response, 503, "unavailable").await;

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let (view, _, _) = read_with(&app, "m1", Some(("paywall-meter", &id))).await;
    assert_eq!(view["truncated"], false);
    assert_eq!(view["meter"]["used"], 2, "{view}");
}
