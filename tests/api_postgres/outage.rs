//! The database going away and coming back: the server reaches PostgreSQL through a TCP
//! relay the test can cut. While cut, `/readyz` and requests that need the database are
//! 503 `unavailable` (never a panic or a hang); once restored, everything answers again
//! without a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::helpers::*;

/// Forwards connections to `upstream` until cut; a cut drops every open connection and
/// refuses new ones until `restore`. A freeze keeps every connection open and forwards
/// nothing either way, new connections included, until `restore`: what a stuck server
/// or a network partition looks like.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    frozen: Arc<AtomicBool>,
    open: Arc<Mutex<JoinSet<()>>>,
}

/// Copies `from` to `to`, holding each chunk while the relay is frozen.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let frozen = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(JoinSet::new()));
        let (cut_flag, connections, frozen_flag) = (cut.clone(), open.clone(), frozen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if cut_flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let frozen = frozen_flag.clone();
                connections.lock().await.spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(upstream).await {
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        tokio::join!(
                            forward(in_read, out_write, frozen.clone()),
                            forward(out_read, in_write, frozen),
                        );
                    }
                });
            }
        });
        Relay {
            port,
            cut,
            frozen,
            open,
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.open.lock().await.abort_all();
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.frozen.store(false, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db?query` with the host and port replaced by the relay's.
fn through(url: &str, port: u16) -> (String, String) {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let path_start = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..path_start];
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (format!("{user}@"), host_port),
        None => (String::new(), authority),
    };
    let upstream = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    (
        format!(
            "{}{user}127.0.0.1:{port}{}",
            &url[..scheme_end],
            &rest[path_start..]
        ),
        upstream,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_the_database_is_unreachable_and_recovers_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "outage");
    let (_, upstream) = through(&db.url, 0);
    let relay = Relay::start(upstream).await;
    let (relayed, _) = through(&db.url, relay.port);
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        relayed,
        &[("PAYWALL_DB_ACQUIRE_TIMEOUT_SECS", "1")],
    )
    .await;
    let admin = app.admin_token().await;
    app.article(
        &admin,
        json!({"title": "Still here", "slug": "still-here", "body": "Text.",
               "section": "s", "access": "free", "status": "published"}),
    )
    .await;
    assert_eq!(app.get("/readyz", None).await.status(), 200);

    relay.cut().await;
    assert_problem(app.get("/readyz", None).await, 503, "unavailable").await;
    // A request that needs the database: the signed-in caller's session.
    assert_problem(app.get("/v1/me", Some(&admin)).await, 503, "unavailable").await;
    let registered = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "during@test.example", "password": PASSWORD}),
        )
        .await;
    assert_problem(registered, 503, "unavailable").await;
    assert_eq!(
        app.get("/healthz", None).await.status(),
        200,
        "the process itself still serves"
    );

    relay.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.get("/readyz", None).await.status() != 200 {
        assert!(std::time::Instant::now() < deadline, "readyz recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.get("/v1/me", Some(&admin)).await.status(), 200);
    assert_eq!(app.get("/v1/articles/still-here", None).await.status(), 200);
    app.reader("after@test.example").await;
}

/// How long `request` took, with its answer.
async fn timed(
    request: impl std::future::Future<Output = reqwest::Response>,
) -> (Duration, reqwest::Response) {
    let started = std::time::Instant::now();
    let response = request.await;
    (started.elapsed(), response)
}

/// An instance reaching its database through a relay, with a cached teaser, a metered
/// article and a signed-in reader.
async fn relayed_app(name: &str) -> (TestDb, Relay, TestApp, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), name);
    let (_, upstream) = through(&db.url, 0);
    let relay = Relay::start(upstream).await;
    let (relayed, _) = through(&db.url, relay.port);
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        relayed,
        &[
            ("PAYWALL_DB_ACQUIRE_TIMEOUT_SECS", "2"),
            ("PAYWALL_REQUEST_TIMEOUT_SECS", "3"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Cached", "slug": "cached", "body": long_body(4), "section": "s", "access": "subscribers", "status": "published"}))
        .await;
    app.article(&admin, json!({"title": "Metered", "slug": "metered", "body": long_body(4), "section": "s", "access": "metered", "status": "published"}))
        .await;
    assert_eq!(app.get("/v1/articles/cached", None).await.status(), 200);
    (db, relay, app, admin)
}

/// During the fault: cached teasers are served; what needs the database fails fast
/// with 503 `unavailable`, never 500; after it, everything answers within a second.
async fn rides_out(relay: &Relay, app: &TestApp, admin: &str, fault: &str) {
    // The poller finds the fault at its first failed read (a cut), or at its second
    // read in a row without an answer in 1 s (a freeze), each a 250 ms tick apart.
    tokio::time::sleep(Duration::from_millis(2_800)).await;
    for _ in 0..20 {
        let (took, teaser) = timed(app.get("/v1/articles/cached", None)).await;
        assert_eq!(teaser.status(), 200, "{fault}: a cached teaser");
        assert!(
            took < Duration::from_millis(500),
            "{fault}: teaser took {took:?}"
        );
    }
    let (took, ready) = timed(app.get("/readyz", None)).await;
    assert_problem(ready, 503, "unavailable").await;
    assert!(
        took < Duration::from_millis(1_200),
        "{fault}: readyz took {took:?}"
    );
    let (took, write) = timed(app.post(
        "/v1/auth/register",
        None,
        json!({"email": "during@test.example", "password": PASSWORD}),
    ))
    .await;
    assert_problem(write, 503, "unavailable").await;
    assert!(
        took < Duration::from_millis(3_500),
        "{fault}: a write took {took:?}"
    );
    let (took, me) = timed(app.get("/v1/me", Some(admin))).await;
    assert_problem(me, 503, "unavailable").await;
    assert!(
        took < Duration::from_millis(1_200),
        "{fault}: a session check took {took:?}"
    );
    let (took, metered) = timed(app.get("/v1/articles/metered", None)).await;
    let status = metered.status().as_u16();
    assert_eq!(
        status, 503,
        "{fault}: a metered read is unavailable, never 500"
    );
    assert_problem(metered, 503, "unavailable").await;
    assert!(
        took < Duration::from_millis(3_500),
        "{fault}: a metered read took {took:?}"
    );

    relay.restore();
    let restored = std::time::Instant::now();
    while app.get("/readyz", None).await.status() != 200 {
        assert!(
            restored.elapsed() < Duration::from_secs(3),
            "{fault}: readyz recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        restored.elapsed() < Duration::from_millis(1_500),
        "{fault}: recovered in {:?}",
        restored.elapsed()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.get("/v1/me", Some(admin)).await.status() != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "{fault}: sessions recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.get("/v1/articles/metered", None).await.status(), 200);
    app.reader(&format!("after-{fault}@test.example")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_database_leaves_cached_reads_and_fails_the_rest_fast() {
    let (_db, relay, app, admin) = relayed_app("cut").await;
    relay.cut().await;
    rides_out(&relay, &app, &admin, "cut").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_leaves_cached_reads_and_fails_the_rest_fast() {
    let (_db, relay, app, admin) = relayed_app("frozen").await;
    relay.freeze();
    rides_out(&relay, &app, &admin, "frozen").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_times_writes_out_and_leaves_reads_alone() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "locked");
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db.url.clone(),
        &[
            ("PAYWALL_DB_ACQUIRE_TIMEOUT_SECS", "1"),
            ("PAYWALL_SIGNUPS_PER_ADDRESS_PER_HOUR", "1000"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Cached", "slug": "cached", "body": long_body(4), "section": "s", "access": "free", "status": "published"}))
        .await;
    app.article(&admin, json!({"title": "Listed", "slug": "listed", "body": long_body(2), "section": "s", "access": "free", "status": "published"}))
        .await;
    assert_eq!(app.get("/v1/articles/cached", None).await.status(), 200);

    // Another client holds the accounts table for six seconds.
    let mut holder = sqlx::postgres::PgConnection::connect(&db.url)
        .await
        .unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let app = Arc::new(app);
    let mut writes = JoinSet::new();
    for i in 0..24 {
        let app = app.clone();
        writes.spawn(async move {
            timed(app.post(
                "/v1/auth/register",
                None,
                json!({"email": format!("blocked{i}@test.example"), "password": PASSWORD}),
            ))
            .await
        });
    }
    // Meanwhile reads that do not need the locked table are served at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..10 {
        let (took, read) = timed(app.get("/v1/articles/cached", None)).await;
        assert_eq!(read.status(), 200);
        assert!(
            took < Duration::from_millis(500),
            "a cached read took {took:?}"
        );
        let (took, list) = timed(app.get("/v1/articles?limit=5", None)).await;
        assert_eq!(list.status(), 200);
        assert!(
            took < Duration::from_millis(1_000),
            "a list read took {took:?}"
        );
    }
    while let Some(done) = writes.join_next().await {
        let (took, response) = done.unwrap();
        let status = response.status().as_u16();
        assert!(
            took < Duration::from_millis(4_500),
            "a write held {took:?} behind the lock"
        );
        assert_problem(response, 503, "unavailable").await;
        assert_eq!(status, 503);
    }
    // /metrics shows where the time went: writers waited for connections of the
    // write pool, which the lock held, while the read pool's waits stayed short.
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let value = |series: String| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    let waits = |pool: &str| {
        value(format!(
            r#"paywall_db_pool_wait_seconds_count{{pool="{pool}"}} "#
        ))
    };
    let within = |pool: &str, le: &str| {
        value(format!(
            r#"paywall_db_pool_wait_seconds_bucket{{pool="{pool}",le="{le}"}} "#
        ))
    };
    assert!(
        waits("write") - within("write", "0.5") >= 1.0,
        "no write waited half a second for a connection:\n{text}"
    );
    assert_eq!(within("read", "1"), waits("read"), "{text}");
    holder.execute("ROLLBACK").await.unwrap();
    holder.close().await.unwrap();
    app.reader("after-lock@test.example").await;
}
