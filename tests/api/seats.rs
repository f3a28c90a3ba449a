//! Reading seats through the real binary: a plan's seats are how many sessions of one
//! account read gated text at once; the next is `reading_elsewhere` until it continues
//! reading there (`POST /v1/me/seat`), the hold time passes, or the reading session
//! ends. Exact under parallel reads; staff, gifts and unlimited plans are exempt.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

pub const SLUG: &str = "seated";
pub const ELSEWHERE_EN: &str = "Your subscription is being read on another device.";

/// A plan of `seats` seats.
pub async fn plan(app: &TestApp, admin: &str, id: &str, seats: u32) {
    let created = app
        .post(
            "/v1/admin/plans",
            Some(admin),
            json!({"id": id, "name": format!("Plan {id}"), "seats": seats}),
        )
        .await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
}

/// Makes the account a subscriber to `plan`, with no end.
pub async fn subscribe(app: &TestApp, admin: &str, account_id: &str, plan: &str) {
    let put = app
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{account_id}/subscription"),
            Some(admin),
            Some(json!({"plan": plan})),
        )
        .await;
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
}

/// A subscriber to `plan` signed in on `devices` devices: (account id, a token each).
pub async fn subscriber(
    app: &TestApp,
    admin: &str,
    email: &str,
    plan: &str,
    devices: usize,
) -> (String, Vec<String>) {
    let (id, first) = app.reader(email).await;
    subscribe(app, admin, &id, plan).await;
    let mut tokens = vec![first];
    for _ in 1..devices {
        tokens.push(token_of(&app.login(email, PASSWORD).await));
    }
    (id, tokens)
}

pub async fn gated_article(app: &TestApp, admin: &str, slug: &str, access: &str) {
    app.article(
        admin,
        json!({"title": format!("Seated {slug}"), "slug": slug, "section": "s",
               "access": access, "status": "published", "body": long_body(6)}),
    )
    .await;
}

/// The answer to a read of `slug` with `token`.
pub async fn read(app: &TestApp, token: &str, slug: &str) -> Value {
    let response = app.get(&format!("/v1/articles/{slug}"), Some(token)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Whether the read was the full text; a teaser must be `reading_elsewhere`.
pub fn full(view: &Value) -> bool {
    if view["truncated"] == json!(false) {
        assert!(view["paywall"].is_null(), "{view}");
        return true;
    }
    assert_eq!(view["paywall"]["reason"], "reading_elsewhere", "{view}");
    false
}

/// The reading flags of `GET /v1/me/sessions` as `token` sees them, in the order of
/// `tokens` (each matched by being `current` for its own token).
pub async fn reading(app: &TestApp, tokens: &[String]) -> Vec<bool> {
    let mut flags = Vec::new();
    for token in tokens {
        let list: Value = app
            .get("/v1/me/sessions", Some(token))
            .await
            .json()
            .await
            .unwrap();
        let me = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["current"] == json!(true))
            .expect("the current session is listed")
            .clone();
        flags.push(me["reading"].as_bool().expect("reading is a boolean"));
    }
    flags
}

async fn set_seats(app: &TestApp, admin: &str, plan: &str, seats: u32) {
    let patched = app
        .request(
            Method::PATCH,
            &format!("/v1/admin/plans/{plan}"),
            Some(admin),
            Some(json!({"seats": seats})),
        )
        .await;
    assert_eq!(patched.status(), 200);
}

/// The devices that got the full text among (device, full) results, each once, in order.
pub fn readers_of(results: &[(usize, bool)]) -> Vec<usize> {
    let mut readers: Vec<usize> = results
        .iter()
        .filter(|(_, full)| *full)
        .map(|(device, _)| *device)
        .collect();
    readers.sort_unstable();
    readers.dedup();
    readers
}

pub async fn take_seat(app: &TestApp, token: &str) -> reqwest::Response {
    app.request(Method::POST, "/v1/me/seat", Some(token), None)
        .await
}

/// A counter's value in a /metrics text (0 when absent).
pub fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn one_seat_reads_on_one_device_and_continuing_here_moves_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    plan(&app, &admin, "solo", 1).await;
    gated_article(&app, &admin, SLUG, "subscribers").await;
    gated_article(&app, &admin, "seated-metered", "metered").await;
    app.article(
        &admin,
        json!({"title": "Open", "slug": "open", "section": "s", "access": "free",
               "status": "published", "body": long_body(3)}),
    )
    .await;
    let (_, devices) = subscriber(&app, &admin, "solo@test.example", "solo", 2).await;
    let (phone, laptop) = (&devices[0], &devices[1]);
    assert_eq!(reading(&app, &devices).await, [false, false]);

    assert!(
        full(&read(&app, phone, SLUG).await),
        "the first device reads"
    );
    assert!(full(&read(&app, phone, SLUG).await), "and reads again");
    let elsewhere = read(&app, laptop, SLUG).await;
    assert!(!full(&elsewhere), "the second device is refused");
    let message = elsewhere["paywall"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("You have ") && message.ends_with(ELSEWHERE_EN),
        "{message}"
    );
    let left: f64 = message["You have ".len()..message.find('%').unwrap()]
        .parse()
        .unwrap();
    assert_eq!(json!(left), elsewhere["percent_left"]);
    assert!(
        !full(&read(&app, laptop, "seated-metered").await),
        "metered articles are gated text too"
    );
    assert!(
        full(&read(&app, laptop, "open").await),
        "free articles need no seat"
    );
    assert_eq!(reading(&app, &devices).await, [true, false]);
    // Both stay signed in.
    for token in &devices {
        assert_eq!(app.get("/v1/me", Some(token)).await.status(), 200);
    }

    // "Continue reading here" on the laptop: the phone's next read is refused.
    assert_eq!(take_seat(&app, laptop).await.status(), 204);
    assert!(!full(&read(&app, phone, SLUG).await));
    assert!(full(&read(&app, laptop, SLUG).await));
    assert_eq!(reading(&app, &devices).await, [false, true]);
    // Taking the seat one holds changes nothing; taking it back works the same way.
    assert_eq!(take_seat(&app, laptop).await.status(), 204);
    assert!(!full(&read(&app, phone, SLUG).await));
    assert_eq!(take_seat(&app, phone).await.status(), 204);
    assert!(full(&read(&app, phone, SLUG).await));
    assert!(!full(&read(&app, laptop, SLUG).await));

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(
        counter(&metrics, "paywall_seat_events_total{event=\"taken_over\"}"),
        2.0
    );
    assert_eq!(
        counter(&metrics, "paywall_seat_events_total{event=\"claimed\"}"),
        1.0
    );
    assert!(counter(&metrics, "paywall_seat_events_total{event=\"refused\"}") >= 4.0);
    assert!(
        counter(
            &metrics,
            "paywall_decisions_total{reason=\"reading_elsewhere\"}"
        ) >= 4.0
    );
}

#[tokio::test]
async fn a_seat_frees_itself_after_the_hold_time_or_when_its_session_ends() {
    // A hold of one second: a lease runs the hold plus one refresh interval (1 s).
    let app = TestApp::spawn_with(&[("PAYWALL_SEAT_HOLD_SECS", "1")]).await;
    let admin = app.admin_token().await;
    plan(&app, &admin, "solo", 1).await;
    gated_article(&app, &admin, SLUG, "subscribers").await;
    let (_, devices) = subscriber(&app, &admin, "hold@test.example", "solo", 3).await;
    assert!(full(&read(&app, &devices[0], SLUG).await));
    assert!(!full(&read(&app, &devices[1], SLUG).await));
    // No sweep runs: the lease ends and the next reader takes the seat.
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    assert_eq!(reading(&app, &devices[..1]).await, [false]);
    assert!(full(&read(&app, &devices[1], SLUG).await));
    assert!(!full(&read(&app, &devices[0], SLUG).await));

    // Signing out frees the seat at once.
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    plan(&app, &admin, "solo", 1).await;
    gated_article(&app, &admin, SLUG, "subscribers").await;
    let (id, devices) = subscriber(&app, &admin, "out@test.example", "solo", 3).await;
    assert!(full(&read(&app, &devices[0], SLUG).await));
    assert!(!full(&read(&app, &devices[1], SLUG).await));
    let out = app
        .post("/v1/auth/logout", Some(&devices[0]), json!({}))
        .await;
    assert_eq!(out.status(), 204);
    assert!(full(&read(&app, &devices[1], SLUG).await));
    assert!(!full(&read(&app, &devices[2], SLUG).await));
    // And so does an admin signing the account out; the new session reads.
    let ended = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/accounts/{id}/sessions"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(ended.status(), 204);
    let fresh = token_of(&app.login("out@test.example", PASSWORD).await);
    assert!(full(&read(&app, &fresh, SLUG).await));
}

#[tokio::test]
async fn plans_of_several_or_unlimited_seats_and_the_exempt() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    plan(&app, &admin, "famille", 2).await;
    plan(&app, &admin, "illimite", 0).await;
    gated_article(&app, &admin, SLUG, "subscribers").await;

    let (family_id, family) = subscriber(&app, &admin, "famille@test.example", "famille", 3).await;
    assert!(full(&read(&app, &family[0], SLUG).await));
    assert!(full(&read(&app, &family[1], SLUG).await));
    assert!(!full(&read(&app, &family[2], SLUG).await), "two seats");
    // The third continues here: the seat held longest (the first device's) moves.
    assert_eq!(take_seat(&app, &family[2]).await.status(), 204);
    assert!(!full(&read(&app, &family[0], SLUG).await));
    assert!(full(&read(&app, &family[1], SLUG).await));
    assert!(full(&read(&app, &family[2], SLUG).await));
    // A plan made larger binds at the next read.
    set_seats(&app, &admin, "famille", 3).await;
    assert!(full(&read(&app, &family[0], SLUG).await));
    // And smaller: the seats past the new number hold nothing.
    set_seats(&app, &admin, "famille", 1).await;
    let fulls = [
        full(&read(&app, &family[0], SLUG).await),
        full(&read(&app, &family[1], SLUG).await),
        full(&read(&app, &family[2], SLUG).await),
    ];
    assert_eq!(fulls.iter().filter(|f| **f).count(), 1, "{fulls:?}");

    // The admin's view of the account's seats.
    let seats: Value = app
        .get(
            &format!("/v1/admin/accounts/{family_id}/seats"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seats["seats"], 1, "{seats}");
    assert_eq!(seats["items"].as_array().unwrap().len(), 1, "{seats}");
    assert_eq!(seats["items"][0]["slot"], 0);
    assert!(seats["items"][0]["held_until"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_problem(
        app.get("/v1/admin/accounts/nobody/seats", Some(&admin))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(
            &format!("/v1/admin/accounts/{family_id}/seats"),
            Some(&family[0]),
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    // Unlimited seats: every device reads, and none holds a seat.
    let (unlimited_id, unlimited) =
        subscriber(&app, &admin, "illimite@test.example", "illimite", 3).await;
    for token in &unlimited {
        assert!(full(&read(&app, token, SLUG).await));
    }
    assert_eq!(reading(&app, &unlimited).await, [false, false, false]);
    assert_eq!(take_seat(&app, &unlimited[0]).await.status(), 204);
    let seats: Value = app
        .get(
            &format!("/v1/admin/accounts/{unlimited_id}/seats"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seats, json!({"seats": 0, "items": []}));

    // A plan no admin defined has one seat.
    let (_, undefined) = subscriber(&app, &admin, "undefined@test.example", "undefined", 2).await;
    assert!(full(&read(&app, &undefined[0], SLUG).await));
    assert!(!full(&read(&app, &undefined[1], SLUG).await));
    // A gift link opens the article without a seat.
    let gift: Value = app
        .post(
            &format!("/v1/articles/{SLUG}/gifts"),
            Some(&undefined[0]),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let token = gift["token"].as_str().unwrap();
    let gifted: Value = app
        .get(
            &format!("/v1/articles/{SLUG}?gift={token}"),
            Some(&undefined[1]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(full(&gifted));
    assert!(
        full(&read(&app, &undefined[0], SLUG).await),
        "the gift took no seat"
    );

    // Staff read on every device; taking a seat changes nothing for them.
    let admin_too = app.admin_token().await;
    assert!(full(&read(&app, &admin, SLUG).await) && full(&read(&app, &admin_too, SLUG).await));
    assert_eq!(take_seat(&app, &admin).await.status(), 204);

    // Without a running subscription there is no seat to take; without a token, no one.
    let (_, reader) = app.reader("reader@test.example").await;
    assert_problem(take_seat(&app, &reader).await, 403, "forbidden").await;
    assert_problem(
        app.request(Method::POST, "/v1/me/seat", None, None).await,
        401,
        "unauthorized",
    )
    .await;
    let lapsed = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/accounts/{family_id}/subscription"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(lapsed.status(), 200);
    assert_problem(take_seat(&app, &family[0]).await, 403, "forbidden").await;
    assert_eq!(reading(&app, &family).await, [false, false, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_reads_on_one_seat_never_both_get_the_text() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    plan(&app, &admin, "solo", 1).await;
    gated_article(&app, &admin, SLUG, "subscribers").await;
    for round in 0..4 {
        let email = format!("race-{round}@test.example");
        let (_, devices) = subscriber(&app, &admin, &email, "solo", 6).await;
        // Every device reads four times at once, and in rounds 2 and 3 the last one
        // also continues reading there in the middle of it.
        let reads = devices.iter().enumerate().flat_map(|(device, token)| {
            let app = &app;
            (0..4).map(move |_| async move { (device, full(&read(app, token, SLUG).await)) })
        });
        let (results, _) = tokio::join!(futures_util::future::join_all(reads), async {
            if round >= 2 {
                assert_eq!(take_seat(&app, &devices[5]).await.status(), 204);
            }
        });
        let readers = readers_of(&results);
        if round < 2 {
            assert_eq!(readers.len(), 1, "round {round}: {results:?}");
        } else {
            // A take-over between reads: the seat moved once, to the last device.
            assert!(
                (1..=2).contains(&readers.len()) && (readers.len() == 1 || readers.contains(&5)),
                "round {round}: {results:?}"
            );
        }
        // Afterwards exactly one device reads, and it is the one listed as reading.
        let mut now_full = Vec::new();
        for token in &devices {
            now_full.push(full(&read(&app, token, SLUG).await));
        }
        assert_eq!(now_full.iter().filter(|f| **f).count(), 1, "{now_full:?}");
        assert_eq!(reading(&app, &devices).await, now_full);
        if round >= 2 {
            assert!(
                now_full[5],
                "the device that continued reading holds the seat"
            );
        }
    }
}

#[tokio::test]
async fn continuing_here_is_throttled_per_account() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    plan(&app, &admin, "solo", 1).await;
    let (_, devices) = subscriber(&app, &admin, "pingpong@test.example", "solo", 2).await;
    for i in 0..10 {
        assert_eq!(
            take_seat(&app, &devices[i % 2]).await.status(),
            204,
            "take {i}"
        );
    }
    let refused = take_seat(&app, &devices[0]).await;
    let retry: u64 = refused
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_problem(refused, 429, "rate_limited").await;
    // Another account is not held back.
    let (_, other) = subscriber(&app, &admin, "other@test.example", "solo", 1).await;
    assert_eq!(take_seat(&app, &other[0]).await.status(), 204);
}

#[tokio::test]
async fn continuing_here_with_the_cookie_alone_must_come_from_this_site() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    plan(&app, &admin, "solo", 1).await;
    let (_, devices) = subscriber(&app, &admin, "cookie@test.example", "solo", 1).await;
    let cookie = format!("paywall_session={}", devices[0]);
    let forged = app
        .client
        .post(app.url("/v1/me/seat"))
        .header("cookie", &cookie)
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_problem(forged, 403, "forbidden").await;
    let own = app
        .client
        .post(app.url("/v1/me/seat"))
        .header("cookie", &cookie)
        .header("origin", app.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 204);
}
