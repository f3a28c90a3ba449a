//! Plans and payments: plans managed by admins and listed publicly, checkout and portal
//! links, and Stripe's webhook with payloads signed here exactly as Stripe signs them
//! (tests/fixtures/stripe), delivered in order, out of order, repeated, for another
//! product, and across a kill -9.

use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

pub const WHSEC: &str = "whsec_paywall_test_secret_0123456789";
pub const OLD_WHSEC: &str = "whsec_paywall_test_secret_retired_42";
pub const PRICE: &str = "price_1PaywallDigitalMonthly";
const DAY: i64 = 86_400;

/// A fixture with its `{{name}}` placeholders filled in.
pub fn fixture(name: &str, vars: &[(&str, String)]) -> String {
    let path = format!(
        "{}/tests/fixtures/stripe/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (key, value) in vars {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    assert!(
        !text.contains("{{"),
        "{name}: a placeholder is left in {text}"
    );
    serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
    text
}

/// `t=...,v1=...` as Stripe computes it: HMAC-SHA256 keyed with the whole `whsec_`
/// secret over the timestamp, a dot and the raw body, in lowercase hex.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!("t={timestamp},v1={}", v1(secret, timestamp, body))
}

fn v1(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn deliver_with(app: &TestApp, body: &str, header: Option<&str>) -> Response {
    let mut request = app
        .client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .body(body.to_string());
    if let Some(header) = header {
        request = request.header("stripe-signature", header);
    }
    request.send().await.expect("delivery sent")
}

/// Delivers `body` signed now with the test secret; asserts Stripe's expected answer.
pub async fn deliver(app: &TestApp, body: &str) {
    let response = deliver_with(app, body, Some(&signature(WHSEC, now(), body))).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"received": true})
    );
}

/// The server with the test secret, and its admin's token.
pub async fn billing_app(env: &[(&str, &str)]) -> (TestApp, String) {
    let mut all = vec![("PAYWALL_STRIPE_WEBHOOK_SECRETS", WHSEC)];
    all.extend_from_slice(env);
    let app = TestApp::spawn_with(&all).await;
    let admin = app.admin_token().await;
    create_digital(&app, &admin).await;
    (app, admin)
}

pub async fn create_digital(app: &TestApp, admin: &str) {
    let created = app
        .post(
            "/v1/admin/plans",
            Some(admin),
            json!({"id": "digital", "name": "Digital", "stripe_price_ids": [PRICE],
                   "checkout_url": "https://buy.stripe.com/test_00g5kk"}),
        )
        .await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
}

/// One reader's subscription as Stripe would report it, with ids of its own.
#[derive(Clone)]
pub struct Life {
    pub account_id: String,
    pub email: String,
    pub customer: String,
    pub subscription: String,
    pub price: String,
    /// When it started (in the past); the first period ends in the past too, the
    /// second a month from now.
    pub t0: i64,
}

impl Life {
    pub fn new(account_id: &str, email: &str, tag: &str) -> Life {
        Life {
            account_id: account_id.to_string(),
            email: email.to_string(),
            customer: format!("cus_{tag}"),
            subscription: format!("sub_{tag}"),
            price: PRICE.to_string(),
            t0: now() - 40 * DAY,
        }
    }

    fn vars(&self, id: &str, created: i64) -> Vec<(&'static str, String)> {
        vec![
            ("event_id", format!("evt_{}_{id}", self.subscription)),
            ("created", created.to_string()),
            ("account_id", self.account_id.clone()),
            ("email", self.email.clone()),
            ("customer", self.customer.clone()),
            ("subscription", self.subscription.clone()),
            ("price", self.price.clone()),
            ("start", self.t0.to_string()),
        ]
    }

    pub fn checkout(&self, id: &str, created: i64) -> String {
        fixture("checkout.session.completed.json", &self.vars(id, created))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn subscription_event(
        &self,
        id: &str,
        kind: &str,
        created: i64,
        status: &str,
        period_end: i64,
        ended_at: Option<i64>,
        basil: bool,
    ) -> String {
        let mut vars = self.vars(id, created);
        vars.push(("type", format!("customer.subscription.{kind}")));
        vars.push(("status", status.to_string()));
        vars.push(("period_end", period_end.to_string()));
        vars.push((
            "ended_at",
            ended_at.map_or("null".into(), |t| t.to_string()),
        ));
        let name = if basil {
            "customer.subscription.basil.json"
        } else {
            "customer.subscription.json"
        };
        fixture(name, &vars)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn invoice(
        &self,
        id: &str,
        kind: &str,
        created: i64,
        reason: &str,
        period: (i64, i64),
        basil: bool,
    ) -> String {
        let mut vars = self.vars(id, created);
        vars.push(("type", format!("invoice.{kind}")));
        vars.push(("billing_reason", reason.to_string()));
        vars.push(("period_start", period.0.to_string()));
        vars.push(("period_end", period.1.to_string()));
        fixture(
            if basil {
                "invoice.basil.json"
            } else {
                "invoice.json"
            },
            &vars,
        )
    }

    /// The end of the second period, which the life's last payment pays for.
    pub fn second_period_end(&self) -> i64 {
        self.t0 + 70 * DAY
    }

    /// Checkout, created, paid, updated, past due, paid again (and deleted with `end`),
    /// in the order Stripe makes them.
    pub fn events(&self, end: bool) -> Vec<String> {
        let t0 = self.t0;
        let (p1, p2) = (t0 + 30 * DAY, self.second_period_end());
        let mut events = vec![
            self.checkout("checkout", t0),
            self.subscription_event("created", "created", t0, "incomplete", p1, None, false),
            self.invoice(
                "paid1",
                "paid",
                t0 + 1,
                "subscription_create",
                (t0, p1),
                false,
            ),
            self.subscription_event("active1", "updated", t0 + 1, "active", p1, None, false),
            self.invoice(
                "failed",
                "payment_failed",
                p1,
                "subscription_cycle",
                (p1, p2),
                true,
            ),
            self.subscription_event("past_due", "updated", p1, "past_due", p2, None, true),
            self.invoice(
                "paid2",
                "paid",
                p1 + 3_600,
                "subscription_cycle",
                (p1, p2),
                true,
            ),
            self.subscription_event("active2", "updated", p1 + 3_600, "active", p2, None, true),
        ];
        if end {
            let at = now() - 60;
            events.push(self.subscription_event(
                "deleted",
                "deleted",
                at,
                "canceled",
                p2,
                Some(at),
                false,
            ));
        }
        events
    }
}

/// The account's subscription as an admin sees it.
pub async fn subscription_of(app: &TestApp, admin: &str, account_id: &str) -> Value {
    let response = app
        .get(&format!("/v1/admin/accounts/{account_id}"), Some(admin))
        .await;
    assert_eq!(response.status(), 200);
    let account: Value = response.json().await.unwrap();
    account["subscription"].clone()
}

/// What entitlement means to a reader: plan, source, status, whether it reads, until when.
pub fn entitlement(subscription: &Value) -> Value {
    json!({
        "plan": subscription["plan"],
        "source": subscription["source"],
        "status": subscription["status"],
        "active": subscription["active"],
        "expires_at": subscription["expires_at"],
    })
}

pub async fn reads_in_full(app: &TestApp, token: &str, slug: &str) -> bool {
    let response = app.get(&format!("/v1/articles/{slug}"), Some(token)).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    view["truncated"] == false
}

async fn subscribers_article(app: &TestApp, admin: &str) -> String {
    app.article(
        admin,
        json!({"title": "For subscribers", "slug": "for-subscribers", "section": "politics",
               "access": "subscribers", "status": "published", "body": long_body(6)}),
    )
    .await;
    "for-subscribers".to_string()
}

#[tokio::test]
async fn plans_are_managed_by_admins_and_listed_publicly_without_prices() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, reader) = app.reader("plans-reader@test.example").await;
    let body = json!({"id": "famille", "name": "Famille", "seats": 4,
                      "stripe_price_ids": ["price_1Famille", "price_1FamilleYear"],
                      "checkout_url": "https://buy.stripe.com/test_famille?locale=fr"});
    assert_problem(
        app.post("/v1/admin/plans", None, body.clone()).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.post("/v1/admin/plans", Some(&reader), body.clone())
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/v1/admin/plans", Some(&reader)).await,
        403,
        "forbidden",
    )
    .await;

    let created = app
        .post("/v1/admin/plans", Some(&admin), body.clone())
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/v1/admin/plans/famille");
    let plan: Value = created.json().await.unwrap();
    assert_eq!(plan["seats"], 4);
    assert_eq!(plan["active"], true);
    assert_eq!(
        plan["stripe_price_ids"],
        json!(["price_1Famille", "price_1FamilleYear"])
    );
    assert_problem(
        app.post("/v1/admin/plans", Some(&admin), body).await,
        409,
        "plan_taken",
    )
    .await;

    // Defaults: one seat, no prices, no link, on sale.
    let plain = app
        .post(
            "/v1/admin/plans",
            Some(&admin),
            json!({"id": "print", "name": " Print "}),
        )
        .await;
    assert_eq!(plain.status(), 201);
    let plain: Value = plain.json().await.unwrap();
    assert_eq!(
        (
            plain["name"].clone(),
            plain["seats"].clone(),
            plain["checkout_url"].clone()
        ),
        (json!("Print"), json!(1), Value::Null)
    );

    // A price buys one plan.
    let taken = app
        .post(
            "/v1/admin/plans",
            Some(&admin),
            json!({"id": "other", "name": "Other", "stripe_price_ids": ["price_1Famille"]}),
        )
        .await;
    let problem = assert_problem(taken, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "stripe_price_ids");
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("famille"));

    // Every bad field is named.
    for (bad, field) in [
        (json!({"name": "No id"}), "id"),
        (json!({"id": "Not A Slug", "name": "x"}), "id"),
        (json!({"id": "x".repeat(65), "name": "x"}), "id"),
        (json!({"id": "noname"}), "name"),
        (json!({"id": "blank", "name": "   "}), "name"),
        (json!({"id": "seats", "name": "x", "seats": -1}), "seats"),
        (json!({"id": "seats", "name": "x", "seats": 1001}), "seats"),
        (
            json!({"id": "prices", "name": "x", "stripe_price_ids": ["price 1"]}),
            "stripe_price_ids",
        ),
        (
            json!({"id": "prices", "name": "x", "stripe_price_ids": ["p_1", "p_1"]}),
            "stripe_price_ids",
        ),
        (
            json!({"id": "link", "name": "x", "checkout_url": "http://buy.example/x"}),
            "checkout_url",
        ),
        (
            json!({"id": "link", "name": "x", "checkout_url": "javascript:alert(1)"}),
            "checkout_url",
        ),
    ] {
        let problem = assert_problem(
            app.post("/v1/admin/plans", Some(&admin), bad.clone()).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{bad}");
    }
    assert_problem(
        app.post(
            "/v1/admin/plans",
            Some(&admin),
            json!({"id": "x", "name": "x", "colour": "red"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    // Changes: a retired plan leaves the public list; a link is removed with null.
    let patched = app
        .request(
            Method::PATCH,
            "/v1/admin/plans/print",
            Some(&admin),
            Some(json!({"active": false, "name": "Print edition"})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(
        (patched["active"].clone(), patched["name"].clone()),
        (json!(false), json!("Print edition"))
    );
    let unlinked = app
        .request(
            Method::PATCH,
            "/v1/admin/plans/famille",
            Some(&admin),
            Some(json!({"checkout_url": null})),
        )
        .await;
    let unlinked: Value = unlinked.json().await.unwrap();
    assert_eq!(unlinked["checkout_url"], Value::Null);
    assert_eq!(unlinked["seats"], 4, "fields not named are kept");
    assert_problem(
        app.request(
            Method::PATCH,
            "/v1/admin/plans/nope",
            Some(&admin),
            Some(json!({"name": "x"})),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/admin/plans/nope", Some(&admin)).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/admin/plans/..%2F", Some(&admin)).await,
        404,
        "not_found",
    )
    .await;

    assert_problem(
        app.get("/v1/plans", Some("not-a-token")).await,
        401,
        "invalid_token",
    )
    .await;
    let public: Value = app.get("/v1/plans", None).await.json().await.unwrap();
    assert_eq!(public["items"].as_array().unwrap().len(), 1, "{public}");
    assert_eq!(public["items"][0]["id"], "famille");
    assert!(
        public["items"][0].get("stripe_price_ids").is_none(),
        "{public}"
    );
    let all: Value = app
        .get("/v1/admin/plans", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["famille", "print"]);

    let deleted = app
        .request(Method::DELETE, "/v1/admin/plans/print", Some(&admin), None)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_problem(
        app.get("/v1/admin/plans/print", Some(&admin)).await,
        404,
        "not_found",
    )
    .await;

    let audit: Value = app
        .get("/v1/admin/audit?target=famille", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["plan.update", "plan.create"]);
}

#[tokio::test]
async fn checkout_hands_out_the_payment_link_with_the_account_and_its_email() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, reader) = app.reader("payer+news@test.example").await;
    app.post(
        "/v1/admin/plans",
        Some(&admin),
        json!({"id": "digital", "name": "Digital", "checkout_url": "https://buy.stripe.com/test_00g?locale=fr&prefilled_email=x"}),
    )
    .await;
    app.post(
        "/v1/admin/plans",
        Some(&admin),
        json!({"id": "unsold", "name": "Unsold"}),
    )
    .await;
    app.post("/v1/admin/plans", Some(&admin), json!({"id": "retired", "name": "Retired", "active": false, "checkout_url": "https://buy.stripe.com/old"})).await;

    assert_problem(
        app.post("/v1/me/checkout", None, json!({"plan": "digital"}))
            .await,
        401,
        "unauthorized",
    )
    .await;
    let response = app
        .post("/v1/me/checkout", Some(&reader), json!({"plan": "digital"}))
        .await;
    assert_eq!(response.status(), 201);
    let url: Value = response.json().await.unwrap();
    let url = url::Url::parse(url["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.host_str(), Some("buy.stripe.com"));
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [
            ("locale".to_string(), "fr".to_string()),
            ("client_reference_id".to_string(), id.clone()),
            (
                "prefilled_email".to_string(),
                "payer+news@test.example".to_string()
            ),
        ]
    );
    for plan in ["unsold", "retired", "nope"] {
        let problem = assert_problem(
            app.post("/v1/me/checkout", Some(&reader), json!({"plan": plan}))
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "plan");
    }
    assert_problem(
        app.post("/v1/me/checkout", Some(&reader), json!({})).await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn the_billing_portal_link_carries_the_email_and_is_404_unconfigured() {
    let app = TestApp::spawn().await;
    let (_, reader) = app.reader("portal@test.example").await;
    assert_problem(
        app.get("/v1/me/billing", Some(&reader)).await,
        404,
        "not_found",
    )
    .await;
    drop(app);
    let app = TestApp::spawn_with(&[(
        "PAYWALL_STRIPE_PORTAL_URL",
        "https://billing.stripe.com/p/login/test_abc",
    )])
    .await;
    let (_, reader) = app.reader("portal@test.example").await;
    assert_problem(app.get("/v1/me/billing", None).await, 401, "unauthorized").await;
    let response = app.get("/v1/me/billing", Some(&reader)).await;
    assert_eq!(response.status(), 200);
    let link: Value = response.json().await.unwrap();
    assert_eq!(
        link["url"],
        "https://billing.stripe.com/p/login/test_abc?prefilled_email=portal%40test.example"
    );
}

#[tokio::test]
async fn every_signature_fault_is_refused_and_changes_nothing() {
    let secrets = format!("{WHSEC},{OLD_WHSEC}");
    let (app, admin) = billing_app(&[("PAYWALL_STRIPE_WEBHOOK_SECRETS", &secrets)]).await;
    let (id, _) = app.reader("signed@test.example").await;
    let life = Life::new(&id, "signed@test.example", "signed");
    let checkout = life.checkout("checkout", life.t0);
    let active = life.subscription_event(
        "active",
        "created",
        life.t0,
        "active",
        now() + 30 * DAY,
        None,
        false,
    );
    let t = now();
    let good = v1(WHSEC, t, &active);
    let faults: Vec<(&str, Option<String>, String)> = vec![
        ("missing header", None, active.clone()),
        ("empty header", Some(String::new()), active.clone()),
        ("no v1", Some(format!("t={t}")), active.clone()),
        ("only v0", Some(format!("t={t},v0={good}")), active.clone()),
        ("no timestamp", Some(format!("v1={good}")), active.clone()),
        (
            "bad hex",
            Some(format!("t={t},v1=zz{}", &good[2..])),
            active.clone(),
        ),
        (
            "short hex",
            Some(format!("t={t},v1={}", &good[..40])),
            active.clone(),
        ),
        (
            "wrong secret",
            Some(signature("whsec_someone_else_entirely_000", t, &active)),
            active.clone(),
        ),
        (
            "altered body",
            Some(signature(WHSEC, t, &active)),
            active.replace("\"active\"", "\"trialing\""),
        ),
        (
            "other timestamp",
            Some(format!("t={},v1={good}", t + 1)),
            active.clone(),
        ),
        // A minute past the tolerance either way: these deliveries come seconds after
        // `t` on a loaded machine. The edges themselves (300 s holds, 301 s does not)
        // are the unit tests' of `auth::stripe`.
        (
            "stale",
            Some(signature(WHSEC, t - 360, &active)),
            active.clone(),
        ),
        (
            "future",
            Some(signature(WHSEC, t + 360, &active)),
            active.clone(),
        ),
    ];
    for (fault, header, body) in &faults {
        let response = deliver_with(&app, body, header.as_deref()).await;
        assert_eq!(response.status(), 400, "{fault}");
        let problem = assert_problem(response, 400, "invalid_signature").await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{fault}");
    }
    // Nothing was recorded: the same event, signed, is applied as new.
    deliver(&app, &checkout).await;
    assert_eq!(subscription_of(&app, &admin, &id).await, Value::Null);
    // A second v1 (during rotation) that holds, and the retired secret, are accepted.
    let header = format!(
        "t={t},v1={},v1={good}",
        v1("whsec_someone_else_entirely_000", t, &active)
    );
    assert_eq!(
        deliver_with(&app, &active, Some(&header)).await.status(),
        200
    );
    let subscription = subscription_of(&app, &admin, &id).await;
    assert_eq!(subscription["source"], "stripe");
    let renewal = life.subscription_event(
        "renewal",
        "updated",
        life.t0 + 5,
        "active",
        now() + 60 * DAY,
        None,
        false,
    );
    let response = deliver_with(&app, &renewal, Some(&signature(OLD_WHSEC, now(), &renewal))).await;
    assert_eq!(response.status(), 200);
    // Within the tolerance either way.
    let later = life.subscription_event(
        "later",
        "updated",
        life.t0 + 6,
        "active",
        now() + 61 * DAY,
        None,
        false,
    );
    assert_eq!(
        deliver_with(&app, &later, Some(&signature(WHSEC, now() - 250, &later)))
            .await
            .status(),
        200
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(
        stripe_events(&metrics, "unknown", "invalid_signature"),
        12.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn without_a_secret_every_delivery_is_refused() {
    let app = TestApp::spawn().await;
    let body = Life::new("x", "x@test.example", "nosecret").checkout("c", now());
    let response = deliver_with(&app, &body, Some(&signature(WHSEC, now(), &body))).await;
    let problem = assert_problem(response, 400, "invalid_signature").await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("PAYWALL_STRIPE_WEBHOOK_SECRETS"));
}

#[tokio::test]
async fn a_subscription_life_grants_reading_then_ends_it_at_once() {
    let (app, admin) = billing_app(&[]).await;
    let slug = subscribers_article(&app, &admin).await;
    let (id, token) = app.reader("life@test.example").await;
    let life = Life::new(&id, "life@test.example", "life");
    let events = life.events(true);

    deliver(&app, &events[0]).await; // checkout: linked, nothing to read yet
    deliver(&app, &events[1]).await; // created, incomplete: the first payment is not made
    assert_eq!(subscription_of(&app, &admin, &id).await, Value::Null);
    assert!(!reads_in_full(&app, &token, &slug).await);

    // Paid for the first period, which is over: the reader is not let in.
    deliver(&app, &events[2]).await;
    deliver(&app, &events[3]).await;
    let first = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        (first["status"].clone(), first["active"].clone()),
        (json!("active"), json!(false))
    );
    assert!(!reads_in_full(&app, &token, &slug).await);

    // The renewal fails: past_due reads on, for the period and the grace after it.
    deliver(&app, &events[4]).await;
    deliver(&app, &events[5]).await;
    let due = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        entitlement(&due),
        json!({"plan": "digital", "source": "stripe", "status": "past_due", "active": true,
               "expires_at": rfc3339(life.second_period_end() + 3 * DAY)})
    );
    assert!(reads_in_full(&app, &token, &slug).await);
    let me: Value = app.get("/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["subscription"]["status"], "past_due");
    assert_eq!(me["subscription"]["source"], "stripe");
    assert_eq!(me["subscription"]["started_at"], rfc3339(life.t0));

    deliver(&app, &events[6]).await;
    deliver(&app, &events[7]).await;
    let paid = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        entitlement(&paid),
        json!({"plan": "digital", "source": "stripe", "status": "active", "active": true,
               "expires_at": rfc3339(life.second_period_end())})
    );

    // Deleted: access ends on the next request.
    deliver(&app, &events[8]).await;
    let ended = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        (ended["status"].clone(), ended["active"].clone()),
        (json!("canceled"), json!(false))
    );
    assert!(!reads_in_full(&app, &token, &slug).await);

    let audit: Value = app
        .get(
            &format!("/v1/admin/audit?actor=stripe&target={id}&limit=100"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["action"], "subscription.stripe");
            e["details"]["status"].as_str().unwrap()
        })
        .collect();
    assert_eq!(statuses, ["canceled", "active", "past_due", "active"]);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    for (kind, count) in [
        ("checkout.session.completed", 1.0),
        ("customer.subscription.created", 1.0),
        ("customer.subscription.updated", 3.0),
        ("customer.subscription.deleted", 1.0),
        ("invoice.paid", 2.0),
        ("invoice.payment_failed", 1.0),
    ] {
        assert_eq!(
            stripe_events(&metrics, kind, "applied"),
            count,
            "{kind} in {metrics}"
        );
    }
}

/// The `paywall_stripe_events_total` count of this type (any type for "") and outcome.
pub fn stripe_events(metrics: &str, kind: &str, outcome: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("paywall_stripe_events_total{"))
        .filter(|l| kind.is_empty() || l.contains(&format!("type=\"{kind}\"")))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn repeats_older_events_and_events_after_deletion_change_nothing() {
    let (app, admin) = billing_app(&[]).await;
    let (id, _) = app.reader("repeat@test.example").await;
    let life = Life::new(&id, "repeat@test.example", "repeat");
    let events = life.events(true);
    for event in &events[..8] {
        deliver(&app, event).await;
    }
    let before = subscription_of(&app, &admin, &id).await;
    let audit_count = |app: &TestApp| {
        let app_url = app.url(&format!(
            "/v1/admin/audit?actor=stripe&limit=100&target={id}"
        ));
        let (client, admin) = (app.client.clone(), admin.clone());
        async move {
            let page: Value = client
                .get(app_url)
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["items"].as_array().unwrap().len()
        }
    };
    let entries = audit_count(&app).await;
    // Every event again, and an older state of the subscription.
    for event in &events[..8] {
        deliver(&app, event).await;
    }
    let older = life.subscription_event(
        "older",
        "updated",
        life.t0 + 2,
        "past_due",
        life.t0 + 3 * DAY,
        None,
        false,
    );
    deliver(&app, &older).await;
    assert_eq!(subscription_of(&app, &admin, &id).await, before);
    assert_eq!(audit_count(&app).await, entries);
    // Deleted is final: nothing after it brings the subscription back.
    deliver(&app, &events[8]).await;
    let revived = life.subscription_event(
        "revived",
        "updated",
        now(),
        "active",
        now() + 30 * DAY,
        None,
        false,
    );
    deliver(&app, &revived).await;
    let after = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        (after["status"].clone(), after["active"].clone()),
        (json!("canceled"), json!(false))
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(stripe_events(&metrics, "", "duplicate"), 8.0, "{metrics}");
    assert_eq!(stripe_events(&metrics, "", "stale"), 2.0, "{metrics}");
}

#[tokio::test]
async fn events_that_come_before_the_checkout_wait_for_it() {
    let (app, admin) = billing_app(&[]).await;
    let (id, token) = app.reader("early@test.example").await;
    let slug = subscribers_article(&app, &admin).await;
    let life = Life::new(&id, "early@test.example", "early");
    let period_end = now() + 30 * DAY;
    let created = life.subscription_event(
        "created", "created", life.t0, "active", period_end, None, true,
    );
    let paid = life.invoice(
        "paid",
        "paid",
        life.t0,
        "subscription_create",
        (life.t0, period_end),
        false,
    );
    deliver(&app, &created).await;
    deliver(&app, &paid).await;
    assert_eq!(subscription_of(&app, &admin, &id).await, Value::Null);
    assert!(!reads_in_full(&app, &token, &slug).await);
    // The checkout links the customer: what waited is applied.
    deliver(&app, &life.checkout("checkout", life.t0 + 1)).await;
    let subscription = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        entitlement(&subscription),
        json!({"plan": "digital", "source": "stripe", "status": "active", "active": true,
               "expires_at": rfc3339(period_end)})
    );
    assert!(reads_in_full(&app, &token, &slug).await);
    // A checkout naming no account, or an account that does not exist, links nothing.
    let stranger = Life::new(
        "00000000-0000-7000-8000-000000000000",
        "x@test.example",
        "stranger",
    );
    deliver(&app, &stranger.checkout("checkout", now())).await;
    deliver(
        &app,
        &stranger.subscription_event("c", "created", now(), "active", period_end, None, false),
    )
    .await;
}

#[tokio::test]
async fn another_products_subscription_makes_no_subscriber() {
    let (app, admin) = billing_app(&[]).await;
    let (id, _) = app.reader("podcast@test.example").await;
    let mut life = Life::new(&id, "podcast@test.example", "podcast");
    life.price = "price_1SomeoneElsesPodcast".into();
    let period_end = now() + 30 * DAY;
    deliver(&app, &life.checkout("checkout", life.t0)).await;
    deliver(
        &app,
        &life.subscription_event(
            "created", "created", life.t0, "active", period_end, None, false,
        ),
    )
    .await;
    deliver(
        &app,
        &life.invoice(
            "paid",
            "paid",
            life.t0,
            "subscription_create",
            (life.t0, period_end),
            true,
        ),
    )
    .await;
    assert_eq!(subscription_of(&app, &admin, &id).await, Value::Null);
    // An event type Paywall does not act on is acknowledged too.
    let other =
        json!({"id": "evt_other", "object": "event", "type": "charge.refunded", "created": now(),
                       "data": {"object": {"id": "ch_1", "object": "charge"}}})
        .to_string();
    deliver(&app, &other).await;
    // A signed body that is no event is a bad request, not a success Stripe would stop retrying.
    for bad in ["not json", "{\"id\": \"evt_x\"}", "[]"] {
        let response = deliver_with(&app, bad, Some(&signature(WHSEC, now(), bad))).await;
        assert_problem(response, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn an_admin_may_change_a_stripe_subscription_and_the_next_event_wins() {
    let (app, admin) = billing_app(&[]).await;
    let (id, _) = app.reader("override@test.example").await;
    let life = Life::new(&id, "override@test.example", "override");
    let period_end = now() + 30 * DAY;
    deliver(&app, &life.checkout("checkout", life.t0)).await;
    deliver(
        &app,
        &life.subscription_event(
            "created", "created", life.t0, "active", period_end, None, false,
        ),
    )
    .await;
    let put = app
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{id}/subscription"),
            Some(&admin),
            Some(json!({"plan": "digital", "expires_at": rfc3339(period_end + 10 * DAY)})),
        )
        .await;
    assert_eq!(put.status(), 200);
    let put: Value = put.json().await.unwrap();
    assert_eq!(
        (
            put["subscription"]["source"].clone(),
            put["subscription"]["status"].clone()
        ),
        (json!("admin"), json!("active"))
    );
    deliver(
        &app,
        &life.subscription_event(
            "updated",
            "updated",
            life.t0 + 10,
            "active",
            period_end,
            None,
            false,
        ),
    )
    .await;
    let back = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        (back["source"].clone(), back["expires_at"].clone()),
        (json!("stripe"), json!(rfc3339(period_end)))
    );
    // Ending it by hand is the admin's, and canceled.
    let ended = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/accounts/{id}/subscription"),
            Some(&admin),
            None,
        )
        .await;
    let ended: Value = ended.json().await.unwrap();
    assert_eq!(
        (
            ended["subscription"]["source"].clone(),
            ended["subscription"]["status"].clone(),
            ended["subscription"]["active"].clone()
        ),
        (json!("admin"), json!("canceled"), json!(false))
    );
    // A plan a running subscription is to cannot be deleted.
    deliver(
        &app,
        &life.subscription_event(
            "again",
            "updated",
            life.t0 + 20,
            "active",
            period_end,
            None,
            false,
        ),
    )
    .await;
    assert_problem(
        app.request(
            Method::DELETE,
            "/v1/admin/plans/digital",
            Some(&admin),
            None,
        )
        .await,
        409,
        "plan_in_use",
    )
    .await;
}

#[tokio::test]
async fn trialing_and_the_newer_api_versions_read_until_the_period_end() {
    let (app, admin) = billing_app(&[("PAYWALL_BILLING_GRACE_DAYS", "0")]).await;
    let (id, _) = app.reader("trial@test.example").await;
    let life = Life::new(&id, "trial@test.example", "trial");
    let trial_end = now() + 14 * DAY;
    deliver(&app, &life.checkout("checkout", life.t0)).await;
    deliver(
        &app,
        &life.subscription_event(
            "created", "created", life.t0, "trialing", trial_end, None, true,
        ),
    )
    .await;
    let trial = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        (trial["status"].clone(), trial["expires_at"].clone()),
        (json!("trialing"), json!(rfc3339(trial_end)))
    );
    // No grace configured: past_due past its period's end reads no more.
    let lapsed = now() - DAY;
    deliver(
        &app,
        &life.subscription_event(
            "due",
            "updated",
            life.t0 + 1,
            "past_due",
            lapsed,
            None,
            true,
        ),
    )
    .await;
    let due = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        (due["status"].clone(), due["active"].clone()),
        (json!("past_due"), json!(false))
    );
    // unpaid ends it at once.
    deliver(
        &app,
        &life.subscription_event(
            "unpaid",
            "updated",
            now() - 5,
            "unpaid",
            trial_end,
            None,
            false,
        ),
    )
    .await;
    let unpaid = subscription_of(&app, &admin, &id).await;
    assert_eq!(
        (unpaid["status"].clone(), unpaid["active"].clone()),
        (json!("canceled"), json!(false))
    );
}

/// Delivers `events` (indexes into the life) in a random order with random repeats.
pub fn shuffled(rng: &mut rand::rngs::StdRng, count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(rng);
    for _ in 0..rng.gen_range(0..4) {
        let again = rng.gen_range(0..count);
        let at = rng.gen_range(0..=order.len());
        order.insert(at, again);
    }
    order
}

#[tokio::test]
async fn any_order_of_a_life_with_any_repeats_ends_in_the_same_entitlement() {
    let (app, admin) = billing_app(&[]).await;
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (id, _) = app.reader("in-order@test.example").await;
    let life = Life::new(&id, "in-order@test.example", "inorder");
    for event in life.events(false) {
        deliver(&app, &event).await;
    }
    let expected = entitlement(&subscription_of(&app, &admin, &id).await);
    assert_eq!(expected["status"], "active", "{expected}");
    for case in 0..6 {
        let end = case % 2 == 1;
        let email = format!("shuffle-{case}@test.example");
        let (id, _) = app.reader(&email).await;
        let mut life = Life::new(&id, &email, &format!("shuffle{case}"));
        life.t0 -= case; // each life its own instants
        let events = life.events(end);
        let order = shuffled(&mut rng, events.len());
        for &i in &order {
            deliver(&app, &events[i]).await;
        }
        let got = entitlement(&subscription_of(&app, &admin, &id).await);
        if end {
            assert_eq!(
                (
                    got["status"].clone(),
                    got["active"].clone(),
                    got["plan"].clone()
                ),
                (json!("canceled"), json!(false), json!("digital")),
                "seed {seed}, order {order:?}"
            );
        } else {
            let mut want = expected.clone();
            want["expires_at"] = json!(rfc3339(life.second_period_end()));
            assert_eq!(got, want, "seed {seed}, order {order:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_right_after_the_answer_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "stripe-crash");
    let env = [("PAYWALL_STRIPE_WEBHOOK_SECRETS", WHSEC)];
    let mut app = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let admin = app.admin_token().await;
    create_digital(&app, &admin).await;
    let mut lives = Vec::new();
    for n in 0..5 {
        let email = format!("crash-{n}@test.example");
        let (id, _) = app.reader(&email).await;
        lives.push(Life::new(&id, &email, &format!("crash{n}")));
    }
    // Each life's checkout and subscription, and the kill right after the last answer.
    for life in &lives {
        deliver(&app, &life.checkout("checkout", life.t0)).await;
        let active = life.subscription_event(
            "active",
            "created",
            life.t0,
            "active",
            now() + 30 * DAY,
            None,
            false,
        );
        deliver(&app, &active).await;
    }
    app.kill_after(std::time::Duration::ZERO).await;
    app.assert_database_intact().await;
    let app = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let admin = app.admin_token().await;
    for life in &lives {
        let subscription = subscription_of(&app, &admin, &life.account_id).await;
        assert_eq!(subscription["active"], true, "{}", life.email);
        // And the events are known: a repeat changes nothing.
        deliver(&app, &life.checkout("checkout", life.t0)).await;
    }
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(
        stripe_events(&metrics, "checkout.session.completed", "duplicate"),
        5.0,
        "{metrics}"
    );
}
