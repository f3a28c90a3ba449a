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
/// refuses new ones until `restore`.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<JoinSet<()>>>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(JoinSet::new()));
        let (cut_flag, connections) = (cut.clone(), open.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if cut_flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                connections.lock().await.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { port, cut, open }
    }

    async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.open.lock().await.abort_all();
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
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
