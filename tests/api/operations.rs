//! Operations: /metrics and request ids.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn metrics_count_requests_decisions_logins_and_charges_without_ids_in_labels() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Gated", "slug": "gated-secret-slug", "body": "One.\n\nTwo.", "section": "s", "access": "subscribers", "status": "published"}))
        .await;
    app.article(&admin, json!({"title": "Metered", "slug": "metered-one", "body": "One.\n\nTwo.", "section": "s", "access": "metered", "status": "published"}))
        .await;
    app.get("/v1/articles/gated-secret-slug", None).await;
    app.get("/v1/articles/metered-one", None).await;
    app.get("/v1/articles/does-not-exist", None).await;
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": ADMIN_EMAIL, "password": "not-the-password"}),
    )
    .await;

    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for expected in [
        r#"paywall_http_requests_total{method="GET",route="/v1/articles/{slug}",status="200"} 2"#,
        r#"paywall_http_requests_total{method="GET",route="/v1/articles/{slug}",status="404"} 1"#,
        r#"paywall_decisions_total{reason="subscription_required"} 1"#,
        r#"paywall_decisions_total{reason="full"} 1"#,
        "paywall_meter_charges_total 1",
        r#"paywall_logins_total{outcome="success"} 1"#,
        r#"paywall_logins_total{outcome="invalid_credentials"} 1"#,
        "paywall_http_request_duration_seconds_bucket",
        "paywall_build_info{version=",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    // Each pool once, as connections in use, idle and at most.
    let pools: &[&str] = &["read", "write"];
    for pool in pools {
        for state in ["in_use", "idle", "max"] {
            let series = format!(r#"paywall_db_connections{{pool="{pool}",state="{state}"}}"#);
            assert_eq!(text.matches(&series).count(), 1, "{series} in\n{text}");
        }
    }
    assert_eq!(
        text.matches("paywall_db_connections{").count(),
        3 * pools.len(),
        "{text}"
    );
    // Every family says what it is.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = line.split_whitespace().nth(2).unwrap();
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }
    for private in ["gated-secret-slug", "does-not-exist", ADMIN_EMAIL, "One."] {
        assert!(!text.contains(private), "{private} leaked into /metrics");
    }
}

#[tokio::test]
async fn metrics_show_the_waits_for_database_connections_per_pool() {
    let app = TestApp::spawn().await;
    // A sign-in reads the account (the read pool) and opens a session (the write pool).
    app.admin_token().await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    for pool in ["read", "write"] {
        let count = format!(r#"paywall_db_pool_wait_seconds_count{{pool="{pool}"}} "#);
        let line = text
            .lines()
            .find(|line| line.starts_with(&count))
            .unwrap_or_else(|| panic!("no {count} in\n{text}"));
        let waits: f64 = line[count.len()..].trim().parse().unwrap();
        assert!(waits >= 1.0, "{line}");
        let bucket = format!(r#"paywall_db_pool_wait_seconds_bucket{{pool="{pool}",le="0.001"}}"#);
        assert!(text.contains(&bucket), "no {bucket} in\n{text}");
        assert!(text.contains(&format!(
            r#"paywall_db_pool_wait_seconds_sum{{pool="{pool}"}}"#
        )));
    }
    assert!(text.contains("# HELP paywall_db_pool_wait_seconds "));
}

#[tokio::test]
async fn metrics_count_article_cache_hits_and_misses() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Cached", "slug": "cached-one", "body": "One.\n\nTwo.", "section": "s", "access": "free", "status": "published"}))
        .await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/articles/cached-one", None).await.status(), 200);
    }
    let text = app.get("/metrics", None).await.text().await.unwrap();
    for expected in [
        r#"paywall_article_cache_total{result="miss"} 1"#,
        r#"paywall_article_cache_total{result="hit"} 2"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

/// The cache's memory is what PAYWALL_CACHE_MIB gives it: 24 articles of 100 KB are
/// more than the 1.7 MiB that 3 MiB leaves articles, so reading them all again misses
/// some; and with one hashing thread, sign-ins at once wait their turn and all pass.
#[tokio::test]
async fn the_cache_holds_what_its_budget_allows_and_one_hashing_thread_serves_every_sign_in() {
    let app =
        TestApp::spawn_with(&[("PAYWALL_CACHE_MIB", "3"), ("PAYWALL_HASH_THREADS", "1")]).await;
    let admin = app.admin_token().await;
    let paragraph = "Un paragraphe de texte pour remplir la mémoire du cache. ".repeat(20);
    let body = vec![paragraph; 90].join("\n\n");
    assert!(body.len() > 100_000);
    for i in 0..24 {
        app.article(
            &admin,
            json!({"title": format!("Heavy {i}"), "slug": format!("heavy-{i}"), "body": body,
                   "section": "s", "access": "free", "status": "published"}),
        )
        .await;
    }
    for _ in 0..2 {
        for i in 0..24 {
            let response = app.get(&format!("/v1/articles/heavy-{i}"), None).await;
            assert_eq!(response.status(), 200);
        }
    }
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let misses: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"paywall_article_cache_total{result="miss"} "#))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no miss count in\n{text}"));
    assert!(misses > 24, "the second pass missed too: {misses} misses");

    for i in 0..4 {
        app.reader(&format!("queued{i}@test.example")).await;
    }
    let sign_ins = (0..4).map(|i| {
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": format!("queued{i}@test.example"), "password": PASSWORD}),
        )
    });
    for response in futures_util::future::join_all(sign_ins).await {
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn a_sign_in_borrows_its_hashing_memory_from_the_caches() {
    let app =
        TestApp::spawn_with(&[("PAYWALL_CACHE_MIB", "42"), ("PAYWALL_HASH_THREADS", "2")]).await;
    // A sign-in: its thread keeps its Argon2 memory a while (10 s) after, lent by the
    // caches, whose budget shows the loan.
    app.admin_token().await;
    const MIB: f64 = 1024.0 * 1024.0;
    let (mut hashing, mut caches) = (0.0, 0.0);
    // The gauges are the process's, and other tests' servers set them too when
    // scraped: a scrape of this one shows this one's, unless another comes between.
    for _ in 0..20 {
        let text = app.get("/metrics", None).await.text().await.unwrap();
        hashing = crate::seats::counter(&text, "paywall_password_hash_memory_bytes ");
        caches = crate::seats::counter(&text, "paywall_cache_budget_bytes ");
        if hashing == 20.0 * MIB && caches <= 22.0 * MIB && caches > 21.0 * MIB {
            break;
        }
    }
    assert_eq!(
        hashing,
        20.0 * MIB,
        "19 MiB of Argon2 blocks, in whole huge pages"
    );
    assert!(
        caches <= 22.0 * MIB && caches > 21.0 * MIB,
        "42 MiB less what hashing holds: {caches}"
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let mut seen = std::collections::HashSet::new();
    for path in ["/healthz", "/v1/articles", "/nowhere", "/v1/me"] {
        let response = app.get(path, None).await;
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        assert!(seen.insert(id), "ids differ");
    }
    let trace = app
        .request(reqwest::Method::TRACE, "/v1/articles", None, None)
        .await;
    assert!(trace.headers().contains_key("x-request-id"));
    assert_eq!(trace.headers()["x-content-type-options"], "nosniff");
    // A proxy's id is kept when it is usable, replaced when it is not.
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "edge-1234.abc_Z")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "edge-1234.abc_Z");
    for bad in ["has spaces in it", &"x".repeat(65), "semi;colon"] {
        let replaced = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        assert_ne!(replaced.headers()["x-request-id"], bad);
    }
}

// SIGTERM under load: every request that got an answer got a good one, every write that
// was answered is in the database afterwards, and the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_drops_nothing() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for i in 0..40 {
        app.article(&admin, json!({"title": format!("M{i}"), "slug": format!("m{i}"), "body": "One.\n\nTwo.", "section": "s", "access": "metered", "status": "published"}))
            .await;
    }
    let client = app.client.clone();
    let base = app.base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut registered = Vec::new();
            let mut bad = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let outcome = if i % 2 == 0 {
                    let email = format!("load{w}-{i}@test.example");
                    client
                        .post(format!("{base}/v1/auth/register"))
                        .json(&json!({"email": email, "password": PASSWORD}))
                        .send()
                        .await
                        .map(|r| (r.status().as_u16(), Some(email)))
                } else {
                    client
                        .get(format!("{base}/v1/articles/m{}", i % 40))
                        .send()
                        .await
                        .map(|r| (r.status().as_u16(), None))
                };
                match outcome {
                    Ok((201, Some(email))) => registered.push(email),
                    Ok((200, None)) => {}
                    // Throttled registrations are a good answer too.
                    Ok((429, _)) => {}
                    Ok((status, _)) => bad.push(status),
                    // Refused connections once the server stopped accepting are expected.
                    Err(_) => break,
                }
            }
            (registered, bad)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &app.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let code = tokio::task::block_in_place(|| app.wait_exit(std::time::Duration::from_secs(30)));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(code, Some(0), "a clean exit");
    let mut registered = Vec::new();
    for worker in workers {
        let (mut done, bad) = worker.await.unwrap();
        assert!(bad.is_empty(), "failed answers during the stop: {bad:?}");
        registered.append(&mut done);
    }
    assert!(!registered.is_empty(), "the load ran");
    let store = app.store().await;
    for email in &registered {
        assert!(
            store.account_by_email(email).await.unwrap().is_some(),
            "{email} was acknowledged but lost"
        );
    }
}

// kill -9 during concurrent writes: after a restart every acknowledged write is there
// (and a SQLite database passes its integrity check).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "crash");
    let db_url = db.url.clone();
    let mut app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db_url.clone(),
        &[("PAYWALL_SIGNUPS_PER_ADDRESS_PER_HOUR", "100000")],
    )
    .await;
    let admin = app.admin_token().await;
    let (client, base) = (app.client.clone(), app.base.clone());
    let mut writers = Vec::new();
    for w in 0..8 {
        let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let slug = format!("crash-{w}-{i}");
                let response = client
                    .post(format!("{base}/v1/admin/articles"))
                    .bearer_auth(&admin)
                    .json(&json!({"title": slug, "slug": slug, "body": "Text.", "section": "s", "access": "free"}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 201 => acknowledged.push(slug),
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => break,
                }
            }
            acknowledged
        }));
    }
    app.kill_after(std::time::Duration::from_millis(800)).await;
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.append(&mut writer.await.unwrap());
    }
    assert!(
        acknowledged.len() > 10,
        "the load ran ({} writes)",
        acknowledged.len()
    );
    drop(app);

    let app = TestApp::start(tempfile::tempdir().unwrap(), db_url, &[]).await;
    let store = app.store().await;
    for slug in &acknowledged {
        assert!(
            store.article_by_slug(slug).await.unwrap().is_some(),
            "{slug} was acknowledged but lost"
        );
    }
    app.assert_database_intact().await;
}

/// `promtool`, from Debian's `prometheus` package: CI installs it; elsewhere the check
/// says it was skipped.
fn promtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install promtool (Debian's prometheus package)"
        );
        println!("promtool check skipped: promtool is not installed");
    }
    found
}

#[tokio::test]
async fn a_scrape_after_traffic_passes_promtool_check_metrics() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Metered", "slug": "metered-one", "body": "One.\n\nTwo.", "section": "s", "access": "metered", "status": "published"}))
        .await;
    for _ in 0..20 {
        app.get("/v1/articles/metered-one", None).await;
        app.get("/v1/articles/nothing-here", None).await;
    }
    app.post(
        "/v1/auth/login",
        None,
        json!({"email": ADMIN_EMAIL, "password": "wrong-password-1"}),
    )
    .await;
    app.request(
        reqwest::Method::from_bytes(b"MADEUP").unwrap(),
        "/healthz",
        None,
        None,
    )
    .await;
    // Histogram samples are folded into buckets every second.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let Some(promtool) = promtool() else {
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn health_checks_answer_head_without_a_body() {
    use std::io::{Read, Write};
    let app = TestApp::spawn().await;
    let address = app.base.trim_start_matches("http://").to_string();
    for path in ["/healthz", "/readyz", "/openapi.json", "/metrics"] {
        let answer = tokio::task::spawn_blocking({
            let address = address.clone();
            move || {
                let mut stream = std::net::TcpStream::connect(address).unwrap();
                write!(
                    stream,
                    "HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                answer
            }
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "", "{path} sent a body to HEAD");
    }
    // Article reads do not answer HEAD: it would spend a meter credit.
    let response = app
        .request(reqwest::Method::HEAD, "/v1/articles/x", None, None)
        .await;
    assert_eq!(response.status(), 405);
}
