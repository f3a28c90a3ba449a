//! API keys and webhook deliveries across two instances on one PostgreSQL database: a
//! key revoked through one is refused by the other at its next request, and two
//! dispatchers sharing one outbox deliver every event once, first, in order.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::api_keys::api_key;
use crate::helpers::*;
use crate::webhooks::*;

async fn pair(name: &str, env: &[(&str, &str)]) -> (TestDb, TestApp, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), name);
    let a = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), env).await;
    let b = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), env).await;
    (db, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_instance_is_refused_by_the_other() {
    let (_db, a, b) = pair("keys-pair", &[]).await;
    let admin = a.admin_token().await;
    let made = api_key(&a, &admin, &["accounts"]).await;
    let key = made["key"].as_str().unwrap();
    assert_eq!(b.get("/v1/admin/accounts", Some(key)).await.status(), 200);
    let revoked = a
        .request(
            Method::DELETE,
            &format!("/v1/admin/api-keys/{}", made["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_problem(
        b.get("/v1/admin/accounts", Some(key)).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_deliver_each_chain_in_order() {
    let (_db, a, b) = pair("webhooks-pair", &[PRIVATE_OK]).await;
    let admin = a.admin_token().await;
    let (receiver, _) = receiving(&a, &admin, &["account.created", "account.updated"]).await;
    let mut expected: Vec<(String, Vec<String>)> = Vec::new();
    for n in 0..4 {
        let (id, _) = a.reader(&format!("pair-{n}@test.example")).await;
        let mut names = Vec::new();
        for step in 0..4 {
            let name = format!("{n}.{step}");
            // Changes made through both instances, alternately.
            let through = if step % 2 == 0 { &a } else { &b };
            let response = through
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
    let accepted = receiver.wait_accepted(20, Duration::from_secs(30)).await;
    let firsts = first_receipts(&accepted);
    assert_eq!(firsts.len(), 20);
    assert!(firsts.iter().all(|r| r.verified));
    assert_told_in_order(&firsts, &expected);
}
