//! Stripe's events for one subscription spread over two instances on one PostgreSQL
//! database, delivered at once, in random orders and with repeats (Stripe retries and
//! reorders; a load balancer sends each delivery anywhere): the account always ends in
//! the entitlement the events in order give, and both instances serve it at the next
//! request.

use rand::SeedableRng;
use serde_json::json;

use crate::billing::*;
use crate::helpers::*;

const DAY: i64 = 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_life_delivered_in_any_order_to_two_instances_at_once_ends_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "stripe-pair");
    let env = [("PAYWALL_STRIPE_WEBHOOK_SECRETS", WHSEC)];
    let a = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let b = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let admin = a.admin_token().await;
    create_digital(&a, &admin).await;
    let slug = "pair-subscribers";
    a.article(
        &admin,
        json!({"title": "Pair", "slug": slug, "section": "s", "access": "subscribers",
               "status": "published", "body": long_body(6)}),
    )
    .await;
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for case in 0..6_i64 {
        let end = case % 2 == 0;
        let email = format!("pair-{case}@test.example");
        let (id, token) = a.reader(&email).await;
        let mut life = Life::new(&id, &email, &format!("pair{case}"));
        life.t0 -= case;
        let events = life.events(end);
        let order = shuffled(&mut rng, events.len());
        // Every delivery at once, each to either instance.
        let deliveries: Vec<_> = order
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let app = if (n + case as usize).is_multiple_of(2) {
                    &a
                } else {
                    &b
                };
                deliver(app, &events[i])
            })
            .collect();
        futures_util::future::join_all(deliveries).await;
        let got = entitlement(&subscription_of(&b, &admin, &id).await);
        let reads = |app| reads_in_full(app, &token, slug);
        if end {
            assert_eq!(
                (got["status"].clone(), got["active"].clone()),
                (json!("canceled"), json!(false)),
                "seed {seed}, order {order:?}"
            );
            assert!(!reads(&a).await && !reads(&b).await, "seed {seed}");
        } else {
            assert_eq!(
                (
                    got["status"].clone(),
                    got["active"].clone(),
                    got["source"].clone()
                ),
                (json!("active"), json!(true), json!("stripe")),
                "seed {seed}, order {order:?}"
            );
            let expires = time::OffsetDateTime::parse(
                got["expires_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
            .unix_timestamp();
            assert_eq!(
                expires,
                life.second_period_end(),
                "seed {seed}, order {order:?}"
            );
            assert!(reads(&a).await && reads(&b).await, "seed {seed}");
            // The end, delivered to one instance, holds on the other at the next request.
            let at = now() - 1;
            let deleted = life.subscription_event(
                "deleted",
                "deleted",
                at,
                "canceled",
                at + 30 * DAY,
                Some(at),
                false,
            );
            deliver(&a, &deleted).await;
            assert!(!reads(&b).await, "seed {seed}");
        }
    }
}
