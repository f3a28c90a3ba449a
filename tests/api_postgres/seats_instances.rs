//! Reading seats across two instances on one PostgreSQL database: a take-over through
//! one binds on the displaced session's very next request through the other, and
//! sessions racing for one seat through both never both read.

use serde_json::json;

use crate::helpers::*;
use crate::seats::*;

async fn pair(name: &str) -> (TestDb, TestApp, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), name);
    let a = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &[]).await;
    let b = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &[]).await;
    (db, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_over_through_one_instance_binds_at_the_next_request_on_the_other() {
    let (_db, a, b) = pair("seats-pair").await;
    let admin = a.admin_token().await;
    plan(&a, &admin, "solo", 1).await;
    gated_article(&a, &admin, SLUG, "subscribers").await;
    let (_, devices) = subscriber(&a, &admin, "pair@test.example", "solo", 2).await;
    let (phone, laptop) = (&devices[0], &devices[1]);
    // The phone reads through A (which now serves its seat from memory), the laptop
    // is refused through B.
    for _ in 0..3 {
        assert!(full(&read(&a, phone, SLUG).await));
    }
    assert!(!full(&read(&b, laptop, SLUG).await));
    for round in 0..3 {
        // The laptop continues reading through B: the phone's next read through A, at
        // once, is refused, and the other way round.
        assert_eq!(take_seat(&b, laptop).await.status(), 204);
        assert!(!full(&read(&a, phone, SLUG).await), "round {round}");
        assert!(full(&read(&b, laptop, SLUG).await));
        assert!(
            full(&read(&a, laptop, SLUG).await),
            "the seat is the session's on both"
        );
        assert_eq!(take_seat(&a, phone).await.status(), 204);
        assert!(!full(&read(&b, laptop, SLUG).await), "round {round}");
        assert!(!full(&read(&a, laptop, SLUG).await), "round {round}");
        assert!(full(&read(&b, phone, SLUG).await));
    }
    // Signing the phone out through B frees its seat for the laptop through A.
    let out = b.post("/v1/auth/logout", Some(phone), json!({})).await;
    assert_eq!(out.status(), 204);
    assert!(full(&read(&a, laptop, SLUG).await));
    assert_eq!(reading(&b, &devices[1..]).await, [true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_racing_for_one_seat_through_two_instances_never_both_read() {
    let (_db, a, b) = pair("seats-race").await;
    let admin = a.admin_token().await;
    plan(&a, &admin, "solo", 1).await;
    plan(&a, &admin, "duo", 2).await;
    gated_article(&a, &admin, SLUG, "subscribers").await;
    for (round, (plan, seats)) in [("solo", 1), ("duo", 2), ("solo", 1), ("duo", 2)]
        .into_iter()
        .enumerate()
    {
        let email = format!("race-{round}@test.example");
        let (_, devices) = subscriber(&a, &admin, &email, plan, 6).await;
        let reads = devices.iter().enumerate().flat_map(|(device, token)| {
            let (a, b) = (&a, &b);
            (0..6).map(move |n| async move {
                let app = if (device + n) % 2 == 0 { a } else { b };
                (device, full(&read(app, token, SLUG).await))
            })
        });
        let results = futures_util::future::join_all(reads).await;
        let readers = readers_of(&results);
        assert_eq!(readers.len(), seats, "round {round}: {results:?}");
        // Through either instance, the same devices read afterwards.
        for app in [&a, &b] {
            let mut now_reading = Vec::new();
            for (device, token) in devices.iter().enumerate() {
                if full(&read(app, token, SLUG).await) {
                    now_reading.push(device);
                }
            }
            assert_eq!(now_reading, readers, "round {round}");
        }
    }
}
