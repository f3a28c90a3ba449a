//! Outbound webhooks, received by a real HTTP receiver started here that checks every
//! delivery with the Standard Webhooks reference library.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// What the receiver does with a delivery.
#[derive(Debug, Clone, Copy)]
pub enum Behavior {
    Answer(u16),
    /// Reads the delivery and answers nothing for this long.
    Hang(Duration),
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub verified: bool,
    pub body: Value,
    /// The status answered; None when it hung.
    pub answered: Option<u16>,
}

#[derive(Default)]
struct ReceiverState {
    secret: Option<String>,
    script: VecDeque<Behavior>,
    default: Option<Behavior>,
    received: Vec<Received>,
}

/// An HTTP/1.1 receiver on 127.0.0.1, answering each request as scripted.
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<ReceiverState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(http::HeaderMap, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut headers = http::HeaderMap::new();
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            headers.append(
                http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                http::HeaderValue::from_str(value.trim()).ok()?,
            );
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buffer[..n]);
    }
    Some((headers, body))
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/paywall", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let Some((headers, body)) = read_request(&mut stream).await else {
                        return;
                    };
                    let (behavior, secret) = {
                        let mut state = state.lock().unwrap();
                        let behavior = state
                            .script
                            .pop_front()
                            .or(state.default)
                            .unwrap_or(Behavior::Answer(200));
                        (behavior, state.secret.clone())
                    };
                    let verified = secret.is_some_and(|secret| {
                        standardwebhooks::Webhook::new(&secret)
                            .and_then(|hook| hook.verify(&body, &headers))
                            .is_ok()
                    });
                    let received = Received {
                        id: headers
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string(),
                        verified,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        answered: match behavior {
                            Behavior::Answer(status) => Some(status),
                            Behavior::Hang(_) => None,
                        },
                    };
                    state.lock().unwrap().received.push(received);
                    match behavior {
                        Behavior::Answer(status) => {
                            let answer = format!(
                                "HTTP/1.1 {status} Scripted\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                            );
                            let _ = stream.write_all(answer.as_bytes()).await;
                            let _ = stream.shutdown().await;
                        }
                        Behavior::Hang(time) => tokio::time::sleep(time).await,
                    }
                });
            }
        });
        Receiver { url, state, task }
    }

    pub fn set_secret(&self, secret: &str) {
        self.state.lock().unwrap().secret = Some(secret.to_string());
    }

    /// Answers the next requests as `script` says, then as `default` (200 if none).
    pub fn script(&self, script: &[Behavior], default: Option<Behavior>) {
        let mut state = self.state.lock().unwrap();
        state.script = script.iter().copied().collect();
        state.default = default;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The deliveries it accepted (answered 2xx), in the order they came.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .collect()
    }

    /// Waits until `count` different messages were accepted.
    pub async fn wait_accepted(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let accepted = self.accepted();
            let mut ids: Vec<&str> = accepted.iter().map(|r| r.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() >= count {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages accepted within {within:?}: {:#?}",
                ids.len(),
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Creates an endpoint for `events` at `url` and returns the answer (with `secret`).
pub async fn endpoint(app: &TestApp, admin: &str, url: &str, events: &[&str]) -> Value {
    let response = app
        .post(
            "/v1/admin/webhooks",
            Some(admin),
            json!({"url": url, "events": events}),
        )
        .await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer
}

/// A receiver with an endpoint subscribed to `events`.
pub async fn receiving(app: &TestApp, admin: &str, events: &[&str]) -> (Receiver, Value) {
    let receiver = Receiver::start().await;
    let hook = endpoint(app, admin, &receiver.url, events).await;
    receiver.set_secret(hook["secret"].as_str().unwrap());
    (receiver, hook)
}

pub const ALL_EVENTS: &[&str] = &[
    "account.created",
    "account.updated",
    "account.deleted",
    "subscription.updated",
    "article.published",
    "article.updated",
    "article.unpublished",
];

pub const PRIVATE_OK: (&str, &str) = ("PAYWALL_WEBHOOK_ALLOW_PRIVATE", "true");

/// The messages accepted first, once each, in the order they were first accepted.
pub fn first_receipts(accepted: &[Received]) -> Vec<Received> {
    let mut seen = std::collections::HashSet::new();
    accepted
        .iter()
        .filter(|r| seen.insert(r.id.clone()))
        .cloned()
        .collect()
}

pub async fn deliveries(app: &TestApp, admin: &str, hook: &Value) -> Vec<Value> {
    let page: Value = app
        .get(
            &format!(
                "/v1/admin/webhooks/{}/deliveries?limit=100",
                hook["id"].as_str().unwrap()
            ),
            Some(admin),
        )
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

fn metric(metrics: &str, outcome: &str) -> f64 {
    metrics
        .lines()
        .find(|line| {
            line.starts_with("paywall_webhook_deliveries_total")
                && line.contains(&format!("outcome=\"{outcome}\""))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_event_is_signed_and_told_in_order() {
    let app = TestApp::spawn_with(&[PRIVATE_OK]).await;
    let admin = app.admin_token().await;
    let (receiver, hook) = receiving(&app, &admin, ALL_EVENTS).await;
    let (only_articles, _) = receiving(&app, &admin, &["article.published"]).await;

    let (reader, _) = app.reader("told@test.example").await;
    let account = format!("/v1/admin/accounts/{reader}");
    let patched = app
        .request(
            Method::PATCH,
            &account,
            Some(&admin),
            Some(json!({"display_name": "Told"})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let subscribed = app
        .request(
            Method::PUT,
            &format!("{account}/subscription"),
            Some(&admin),
            Some(json!({"plan": "digital", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(subscribed.status(), 200);
    let body = format!("{}\n\nA GATED-PARAGRAPH-NEVER-SENT here.", long_body(4));
    let article = app
        .article(
            &admin,
            json!({"title": "Told", "slug": "told", "body": body, "section": "s",
                   "access": "subscribers", "status": "published"}),
        )
        .await;
    for change in [json!({"title": "Told again"}), json!({"status": "draft"})] {
        let response = app
            .request(
                Method::PATCH,
                "/v1/admin/articles/told",
                Some(&admin),
                Some(change),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    // A draft's edits tell nothing.
    let response = app
        .request(
            Method::PATCH,
            "/v1/admin/articles/told",
            Some(&admin),
            Some(json!({"title": "Quiet"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let deleted = app
        .request(Method::DELETE, &account, Some(&admin), None)
        .await;
    assert_eq!(deleted.status(), 204);

    let accepted = receiver.wait_accepted(7, Duration::from_secs(20)).await;
    let firsts = first_receipts(&accepted);
    assert!(firsts.iter().all(|r| r.verified), "{firsts:#?}");
    assert!(firsts.iter().all(|r| r.id.starts_with("msg_")));
    let about = |subject: &str| -> Vec<String> {
        firsts
            .iter()
            .filter(|r| r.body["data"]["id"] == subject)
            .map(|r| r.body["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        about(&reader),
        [
            "account.created",
            "account.updated",
            "subscription.updated",
            "account.deleted"
        ]
    );
    assert_eq!(
        about(article["id"].as_str().unwrap()),
        [
            "article.published",
            "article.updated",
            "article.unpublished"
        ]
    );
    for received in &firsts {
        let body = &received.body;
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
        assert!(body["data"].is_object());
        assert!(
            !body.to_string().contains("GATED-PARAGRAPH"),
            "no text in events: {body}"
        );
        assert!(!body.to_string().contains("password"), "{body}");
    }
    let updated = firsts
        .iter()
        .find(|r| r.body["type"] == "subscription.updated")
        .unwrap();
    assert_eq!(updated.body["data"]["email"], "told@test.example");
    assert_eq!(updated.body["data"]["subscription"]["plan"], "digital");
    assert_eq!(updated.body["data"]["subscription"]["active"], true);
    let published = firsts
        .iter()
        .find(|r| r.body["type"] == "article.published")
        .unwrap();
    assert_eq!(published.body["data"]["slug"], "told");
    assert_eq!(published.body["data"]["access"], "subscribers");

    // The endpoint subscribed to publications alone got that one.
    let others = only_articles
        .wait_accepted(1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let others = first_receipts(&others);
    assert_eq!(only_articles.accepted().len(), 1, "{others:#?}");
    assert_eq!(others[0].body["type"], "article.published");

    // The delivery log: each delivered at the first attempt.
    let log = deliveries(&app, &admin, &hook).await;
    assert_eq!(log.len(), 7, "{log:#?}");
    for delivery in &log {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["last_response_code"], 200);
        assert_eq!(delivery["next_attempt_at"], Value::Null);
        assert!(delivery["finished_at"].is_string());
    }
    assert_eq!(log[0]["type"], "account.deleted", "newest first");
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metric(&metrics, "delivered") >= 8.0, "{metrics}");
}

#[tokio::test]
async fn a_failing_then_silent_receiver_is_retried_until_it_answers() {
    let app = TestApp::spawn_with(&[PRIVATE_OK, ("PAYWALL_WEBHOOK_TIMEOUT_SECS", "1")]).await;
    let admin = app.admin_token().await;
    let (receiver, hook) = receiving(&app, &admin, &["account.created", "account.updated"]).await;
    receiver.script(
        &[
            Behavior::Answer(500),
            Behavior::Hang(Duration::from_secs(3)),
        ],
        Some(Behavior::Answer(204)),
    );
    let (reader, _) = app.reader("retried@test.example").await;
    for name in ["One", "Two"] {
        let response = app
            .request(
                Method::PATCH,
                &format!("/v1/admin/accounts/{reader}"),
                Some(&admin),
                Some(json!({"display_name": name})),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    // While the receiver fails and hangs, reads and sign-ins go on at their pace.
    let article = app
        .article(
            &admin,
            json!({"title": "Fast", "slug": "fast", "body": long_body(3), "section": "s",
                   "access": "free", "status": "published"}),
        )
        .await;
    assert_eq!(article["slug"], "fast");
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(app.get("/v1/articles/fast", None).await.status(), 200);
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    let accepted = receiver.wait_accepted(3, Duration::from_secs(30)).await;
    let firsts = first_receipts(&accepted);
    let kinds: Vec<&str> = firsts
        .iter()
        .map(|r| r.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["account.created", "account.updated", "account.updated"]
    );
    assert_eq!(firsts[1].body["data"]["display_name"], "One");
    assert_eq!(firsts[2].body["data"]["display_name"], "Two");
    // The first message was tried three times (500, no answer, 204), with the same id,
    // and nothing after it went out before it was accepted.
    let received = receiver.received();
    assert_eq!(received[0].id, received[1].id);
    assert_eq!(received[1].id, received[2].id);
    assert_eq!(received[0].answered, Some(500));
    assert_eq!(received[1].answered, None);
    assert!(received.iter().all(|r| r.verified));

    let log = deliveries(&app, &admin, &hook).await;
    let first = log.last().unwrap();
    assert_eq!(first["status"], "delivered", "{first}");
    assert_eq!(first["attempts"], 3);
    assert_eq!(first["last_response_code"], 204);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metric(&metrics, "failed") >= 2.0, "{metrics}");
}

#[tokio::test]
async fn a_delivery_failing_for_its_whole_window_is_given_up() {
    let app = TestApp::spawn_with(&[PRIVATE_OK, ("PAYWALL_WEBHOOK_RETRY_SECS", "3")]).await;
    let admin = app.admin_token().await;
    let (receiver, hook) = receiving(&app, &admin, &["account.created", "account.updated"]).await;
    receiver.script(&[], Some(Behavior::Answer(503)));
    let (reader, _) = app.reader("given-up@test.example").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let log = deliveries(&app, &admin, &hook).await;
        if log.first().is_some_and(|d| d["status"] == "failed") {
            break log[0].clone();
        }
        assert!(Instant::now() < deadline, "not given up: {log:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(failed["attempts"].as_i64().unwrap() >= 2, "{failed}");
    assert_eq!(failed["last_response_code"], 503);
    assert!(failed["last_error"].as_str().unwrap().contains("503"));
    // What follows in the same account's chain is no longer held back.
    receiver.script(&[], Some(Behavior::Answer(200)));
    let response = app
        .request(
            Method::PATCH,
            &format!("/v1/admin/accounts/{reader}"),
            Some(&admin),
            Some(json!({"display_name": "Next"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let accepted = receiver.wait_accepted(1, Duration::from_secs(10)).await;
    assert_eq!(accepted[0].body["type"], "account.updated");
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(metric(&metrics, "gave_up"), 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_with_deliveries_pending_loses_none_and_keeps_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "webhook-crash");
    let env = [PRIVATE_OK, ("PAYWALL_WEBHOOK_TIMEOUT_SECS", "2")];
    let mut app = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let admin = app.admin_token().await;
    let (receiver, _) = receiving(&app, &admin, &["account.created", "account.updated"]).await;
    // Down while the changes are made, then hanging on one when the service dies.
    receiver.script(&[], Some(Behavior::Answer(503)));
    let mut expected: Vec<(String, Vec<String>)> = Vec::new();
    for n in 0..3 {
        let (id, _) = app.reader(&format!("crash-{n}@test.example")).await;
        let mut names = Vec::new();
        for step in 0..3 {
            let name = format!("reader {n} step {step}");
            let response = app
                .request(
                    Method::PATCH,
                    &format!("/v1/admin/accounts/{id}"),
                    Some(&admin),
                    Some(json!({"display_name": name})),
                )
                .await;
            assert_eq!(response.status(), 200);
            names.push(name);
        }
        expected.push((id, names));
    }
    receiver.script(
        &[Behavior::Hang(Duration::from_secs(10))],
        Some(Behavior::Answer(503)),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !receiver.received().iter().any(|r| r.answered.is_none()) {
        assert!(Instant::now() < deadline, "no delivery in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.kill_after(Duration::ZERO).await;
    app.assert_database_intact().await;
    drop(app);

    receiver.script(&[], Some(Behavior::Answer(200)));
    let _app = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let accepted = receiver.wait_accepted(12, Duration::from_secs(40)).await;
    let firsts = first_receipts(&accepted);
    assert_eq!(firsts.len(), 12, "every message, once first: {firsts:#?}");
    assert!(firsts.iter().all(|r| r.verified));
    assert_told_in_order(&firsts, &expected);
}

/// For each (account id, display names set in turn): its events were first accepted in
/// that order, after its creation (no name yet).
pub fn assert_told_in_order(firsts: &[Received], expected: &[(String, Vec<String>)]) {
    for (id, names) in expected {
        let told: Vec<Value> = firsts
            .iter()
            .filter(|r| r.body["data"]["id"] == id.as_str())
            .map(|r| r.body["data"]["display_name"].clone())
            .collect();
        let mut want = vec![Value::Null];
        want.extend(names.iter().map(|n| json!(n)));
        assert_eq!(told, want, "the order of account {id}'s events");
    }
}

#[tokio::test]
async fn endpoints_on_private_addresses_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for url in [
        "http://127.0.0.1:9/hooks",
        "http://localhost:8080/hooks",
        "http://[::1]/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hooks",
        "http://192.168.1.20/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://0.0.0.0/hooks",
        "http://no-such-host.invalid/hooks",
    ] {
        let problem = assert_problem(
            app.post(
                "/v1/admin/webhooks",
                Some(&admin),
                json!({"url": url, "events": ["account.created"]}),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }
    let problem = assert_problem(
        app.post(
            "/v1/admin/webhooks",
            Some(&admin),
            json!({"url": "http://127.0.0.1:9/hooks", "events": ["account.created"]}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("PAYWALL_WEBHOOK_ALLOW_PRIVATE"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_private_destination_is_refused_at_delivery_too() {
    // Made while private addresses were allowed; delivered after they no longer are.
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "webhook-ssrf");
    let app = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &[PRIVATE_OK]).await;
    let admin = app.admin_token().await;
    let (receiver, hook) = receiving(&app, &admin, &["account.created"]).await;
    drop(app);
    let app = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &[]).await;
    let admin = app.admin_token().await;
    app.reader("inside@test.example").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let refused = loop {
        let log = deliveries(&app, &admin, &hook).await;
        if log
            .first()
            .is_some_and(|d| d["attempts"].as_i64() >= Some(1))
        {
            break log[0].clone();
        }
        assert!(Instant::now() < deadline, "no attempt: {log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused["status"], "pending");
    assert_eq!(refused["last_response_code"], Value::Null);
    assert!(
        refused["last_error"]
            .as_str()
            .unwrap()
            .contains("private or loopback"),
        "{refused}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metric(&metrics, "refused") >= 1.0, "{metrics}");
}

#[tokio::test]
async fn endpoints_are_managed_and_their_secret_shown_once() {
    let app = TestApp::spawn_with(&[PRIVATE_OK]).await;
    let admin = app.admin_token().await;
    let (receiver, hook) = receiving(&app, &admin, &["account.created"]).await;
    let id = hook["id"].as_str().unwrap();
    let secret = hook["secret"].as_str().unwrap();
    assert!(id.starts_with("wh_") && secret.starts_with("whsec_"));
    assert_eq!(hook["active"], true);
    assert_eq!(hook["events"], json!(["account.created"]));
    let path = format!("/v1/admin/webhooks/{id}");
    let got: Value = app.get(&path, Some(&admin)).await.json().await.unwrap();
    assert_eq!(got["url"], receiver.url.as_str());
    assert!(got.get("secret").is_none() && !got.to_string().contains(secret));
    let list: Value = app
        .get("/v1/admin/webhooks", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));

    // Paused: events wait, and go out, in order, once it is active again.
    let paused = app
        .request(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"active": false, "description": "CRM"})),
        )
        .await;
    let paused: Value = paused.json().await.unwrap();
    assert_eq!(paused["active"], false);
    assert_eq!(paused["description"], "CRM");
    app.reader("waiting-1@test.example").await;
    app.reader("waiting-2@test.example").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(receiver.received().is_empty());
    let resumed = app
        .request(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"active": true, "description": null})),
        )
        .await;
    let resumed: Value = resumed.json().await.unwrap();
    assert_eq!(resumed["description"], Value::Null);
    let accepted = receiver.wait_accepted(2, Duration::from_secs(10)).await;
    assert_eq!(accepted[0].body["data"]["email"], "waiting-1@test.example");

    for (body, field) in [
        (json!({"events": []}), "events"),
        (json!({"events": ["account.*"]}), "events"),
        (json!({"url": "ftp://example.com/hooks"}), "url"),
        (
            json!({"url": "https://user:secret@example.com/hooks"}),
            "url",
        ),
        (json!({"url": "not a url"}), "url"),
    ] {
        let problem = assert_problem(
            app.request(Method::PATCH, &path, Some(&admin), Some(body.clone()))
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    for (body, field) in [
        (json!({"events": ["account.created"]}), "url"),
        (json!({"url": receiver.url}), "events"),
    ] {
        let problem = assert_problem(
            app.post("/v1/admin/webhooks", Some(&admin), body.clone())
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    assert_problem(
        app.request(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"secret": "mine"})),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let (_, reader) = app.reader("not-an-admin@test.example").await;
    assert_problem(app.get(&path, Some(&reader)).await, 403, "forbidden").await;
    assert_problem(
        app.get("/v1/admin/webhooks", None).await,
        401,
        "unauthorized",
    )
    .await;

    assert_eq!(
        app.request(Method::DELETE, &path, Some(&admin), None)
            .await
            .status(),
        204
    );
    for path in [path.clone(), format!("{path}/deliveries")] {
        assert_problem(app.get(&path, Some(&admin)).await, 404, "not_found").await;
    }
    assert_problem(
        app.request(Method::DELETE, &path, Some(&admin), None).await,
        404,
        "not_found",
    )
    .await;
    let audit: Value = app
        .get("/v1/admin/audit?limit=100", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    for action in ["webhook.create", "webhook.update", "webhook.delete"] {
        assert!(
            audit["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == action),
            "{action}"
        );
    }
    assert!(
        !audit.to_string().contains(secret),
        "no secret in the audit log"
    );
}
