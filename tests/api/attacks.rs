//! What an attacker tries with black-box requests: lifting the meter's address cap,
//! flooding metrics labels, reusing reset links, guessing a current password with a
//! stolen session, forging cross-site requests with the session cookie, doubling the
//! Authorization header, registering look-alike addresses, and control characters in
//! query parameters.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Reads an article with an optional meter id; returns (full text?, the id handed back).
async fn read_metered(app: &TestApp, slug: &str, id: Option<&str>) -> (bool, Option<String>) {
    let mut request = app.client.get(app.url(&format!("/v1/articles/{slug}")));
    if let Some(id) = id {
        request = request.header("paywall-meter", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let id = response
        .headers()
        .get("paywall-meter")
        .map(|v| v.to_str().unwrap().to_string());
    let view: Value = response.json().await.unwrap();
    (view["truncated"] == false, id)
}

#[tokio::test]
async fn dropping_the_meter_id_never_lifts_the_address_cap() {
    let (cap, limit) = (5, 3);
    let app = TestApp::spawn_with(&[
        ("PAYWALL_METER_UNIDENTIFIED_PER_DAY", "5"),
        ("PAYWALL_METER_ANONYMOUS", "3"),
    ])
    .await;
    let admin = app.admin_token().await;
    metered(&app, &admin, 40).await;
    let mut full = 0;
    // First the reported attack: the same article, counted by the address, asked for
    // again and again without an id, each answer's fresh id then spent on others.
    let mut ids = Vec::new();
    for _ in 0..12 {
        let (open, id) = read_metered(&app, "m0", None).await;
        full += usize::from(open);
        ids.extend(id);
    }
    let mut next = 1;
    for id in &ids {
        while next < 40 {
            let (open, _) = read_metered(&app, &format!("m{next}"), Some(id)).await;
            if !open {
                break;
            }
            full += 1;
            next += 1;
        }
    }
    // Then every article once more, dropping the id after each use.
    for i in 0..40 {
        let (open, id) = read_metered(&app, &format!("m{i}"), None).await;
        full += usize::from(open);
        if let Some(id) = id {
            for j in (i + 1)..40 {
                let (open, _) = read_metered(&app, &format!("m{j}"), Some(&id)).await;
                if !open {
                    break;
                }
                full += 1;
            }
        }
    }
    assert!(
        full <= cap * (limit + 1),
        "{full} metered articles in full from one address"
    );
    assert!(full >= cap, "the cap still lets {cap} readers in: {full}");
}

fn metrics_series(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count()
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn made_up_methods_never_become_metrics_series() {
    let app = Arc::new(TestApp::spawn().await);
    let flood = |from: usize, to: usize| {
        let app = app.clone();
        async move {
            let mut tasks = Vec::new();
            for worker in 0..8 {
                let app = app.clone();
                tasks.push(tokio::spawn(async move {
                    for i in (from + worker..to).step_by(8) {
                        let method = Method::from_bytes(format!("XYZ{i}").as_bytes()).unwrap();
                        let response = app.request(method, "/healthz", None, None).await;
                        assert_eq!(response.status(), 405);
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
    };
    // A scrape after the histograms' upkeep (every second) sees every series so far,
    // the scrape's own included.
    let settled = || async {
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        app.get("/metrics", None).await;
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        app.get("/metrics", None).await.text().await.unwrap()
    };
    flood(0, 500).await;
    let before = settled().await;
    let rss_before = resident_kib(app.pid());
    flood(500, 5_500).await;
    let after = settled().await;
    let rss_after = resident_kib(app.pid());
    assert!(
        !after.contains("method=\"XYZ"),
        "a made-up method is a label"
    );
    assert!(after.contains("method=\"other\""), "{after}");
    assert_eq!(
        metrics_series(&before),
        metrics_series(&after),
        "5,000 made-up methods added series"
    );
    assert!(
        rss_after < rss_before + 8 * 1024,
        "resident memory grew from {rss_before} to {rss_after} KiB"
    );
}

async fn issue_reset(app: &TestApp, admin: &str, id: &str) -> String {
    let response = app
        .post(
            &format!("/v1/admin/accounts/{id}/password-reset"),
            Some(admin),
            json!(null),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn use_reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post(
        "/v1/auth/password-reset",
        None,
        json!({"token": token, "new_password": password}),
    )
    .await
}

#[tokio::test]
async fn a_reset_link_dies_when_the_password_or_the_email_changes_or_a_newer_one_is_issued() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app.reader("ada@example.org").await;

    // The reader changes the password: the link issued before is dead.
    let link = issue_reset(&app, &admin, &id).await;
    let changed = app
        .post(
            "/v1/me/password",
            Some(&token),
            json!({"current_password": PASSWORD, "new_password": "another-passphrase-Debussy-1862"}),
        )
        .await;
    assert_eq!(changed.status(), 204);
    let refused = use_reset(&app, &link, "third-passphrase-Fauré-1845").await;
    assert_problem(refused, 401, "invalid_token").await;

    // An admin changes the email: the link mailed to the old address is dead.
    let link = issue_reset(&app, &admin, &id).await;
    let patched = app
        .request(
            Method::PATCH,
            &format!("/v1/admin/accounts/{id}"),
            Some(&admin),
            Some(json!({"email": "ada.new@example.org"})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let refused = use_reset(&app, &link, "third-passphrase-Fauré-1845").await;
    assert_problem(refused, 401, "invalid_token").await;

    // A newer link replaces the older one; the newer one works once.
    let older = issue_reset(&app, &admin, &id).await;
    let newer = issue_reset(&app, &admin, &id).await;
    assert_problem(
        use_reset(&app, &older, "third-passphrase-Fauré-1845").await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(
        use_reset(&app, &newer, "third-passphrase-Fauré-1845")
            .await
            .status(),
        204
    );
    app.login("ada.new@example.org", "third-passphrase-Fauré-1845")
        .await;
}

#[tokio::test]
async fn current_password_checks_are_throttled_per_account() {
    let app = Arc::new(TestApp::spawn().await);
    let (_, token) = app.reader("bea@example.org").await;
    let wrong = |path: &'static str, method: Method| {
        let (app, token) = (app.clone(), token.clone());
        async move {
            let body = if method == Method::DELETE {
                json!({"password": "not-the-passphrase-0"})
            } else {
                json!({"current_password": "not-the-passphrase-0", "new_password": "another-passphrase-Debussy-1862"})
            };
            app.request(method, path, Some(&token), Some(body)).await
        }
    };
    for _ in 0..5 {
        let response = wrong("/v1/me/password", Method::POST).await;
        assert_problem(response, 401, "invalid_credentials").await;
    }
    for (path, method) in [
        ("/v1/me/password", Method::POST),
        ("/v1/me", Method::DELETE),
    ] {
        let response = wrong(path, method).await;
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(retry.is_some_and(|s| s > 0), "Retry-After: {retry:?}");
        assert_problem(response, 429, "rate_limited").await;
    }
    // Even the right password waits out the window: the guesser learns nothing.
    let right = app
        .request(
            Method::DELETE,
            "/v1/me",
            Some(&token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(right, 429, "rate_limited").await;

    // A flood sent at once on another account: no more than the allowance is hashed.
    let (_, other) = app.reader("cy@example.org").await;
    let mut flood = Vec::new();
    for _ in 0..30 {
        let (app, other) = (app.clone(), other.clone());
        flood.push(tokio::spawn(async move {
            app.post(
                "/v1/me/password",
                Some(&other),
                json!({"current_password": "not-the-passphrase-0", "new_password": "another-passphrase-Debussy-1862"}),
            )
            .await
            .status()
            .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in flood {
        statuses.push(task.await.unwrap());
    }
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let throttled = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(checked, 5, "{statuses:?}");
    assert_eq!(throttled, 25, "{statuses:?}");
    // The first account is not touched by the second one's throttle, and sign-in works.
    app.login("cy@example.org", PASSWORD).await;
}

/// The `paywall_session` cookie that sign-in sets.
async fn session_cookie(app: &TestApp, email: &str, password: &str) -> String {
    let response = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("paywall_session="))
        .expect("sign-in sets the session cookie")
        .to_string();
    cookie.split(';').next().unwrap().to_string()
}

/// A POST the way a browser sends a form: the cookie alone, a form content type, and
/// whatever `Origin`, `Referer` and `Sec-Fetch-Site` are given.
async fn cookie_post(
    app: &TestApp,
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(path))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn cookie_only_cross_site_requests_are_refused() {
    let app = TestApp::spawn_with(&[("PAYWALL_CORS_ORIGINS", "https://www.news.example")]).await;
    let admin = app.admin_token().await;
    let (id, _) = app.reader("dora@example.org").await;
    let subscribed = app
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{id}/subscription"),
            Some(&admin),
            Some(json!({"plan": "digital", "expires_at": null})),
        )
        .await;
    assert_eq!(subscribed.status(), 200);
    app.article(&admin, json!({"title": "Gated", "slug": "gated", "body": long_body(4), "section": "s", "access": "subscribers", "status": "published"}))
        .await;
    let reader = session_cookie(&app, "dora@example.org", PASSWORD).await;
    let staff = session_cookie(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let evil = [("origin", "https://evil.example")];
    for (path, cookie) in [
        ("/v1/articles/gated/gifts", &reader),
        (
            &format!("/v1/admin/accounts/{id}/password-reset") as &str,
            &staff,
        ),
        ("/v1/auth/logout", &reader),
    ] {
        let refused = cookie_post(&app, path, cookie, &evil).await;
        assert_problem(refused, 403, "forbidden").await;
    }
    for headers in [
        &[][..],
        &[("referer", "https://evil.example/page")][..],
        &[("origin", "null")][..],
        // The right origin, but the browser says the request was made cross-site.
        &[
            ("origin", app.base.as_str()),
            ("sec-fetch-site", "cross-site"),
        ][..],
    ] {
        let refused = cookie_post(&app, "/v1/auth/logout", &reader, headers).await;
        assert_problem(refused, 403, "forbidden").await;
    }
    // Nothing was made: no gift, and the session still reads in full.
    let me = app
        .client
        .get(app.url("/v1/articles/gated"))
        .header("cookie", &reader)
        .send()
        .await
        .unwrap();
    let view: Value = me.json().await.unwrap();
    assert_eq!(view["truncated"], false, "the session survived");
    let audit: Value = app
        .get(
            "/v1/admin/audit?action=account.password_reset",
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 0, "{audit}");

    // From the service's own pages, or an allowed origin, the same requests act.
    let own = [
        ("origin", app.base.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let gift = cookie_post(&app, "/v1/articles/gated/gifts", &reader, &own).await;
    assert_eq!(gift.status(), 201);
    let allowed = [
        ("origin", "https://www.news.example"),
        ("sec-fetch-site", "same-site"),
    ];
    let gift = cookie_post(&app, "/v1/articles/gated/gifts", &reader, &allowed).await;
    assert_eq!(gift.status(), 201);
    let referer = format!("{}/account", app.base);
    let out = cookie_post(&app, "/v1/auth/logout", &reader, &[("referer", &referer)]).await;
    assert_eq!(out.status(), 204);
    // A bearer token needs none of this: it is never sent by a browser on its own.
    let (_, bearer) = app.reader("eve@example.org").await;
    let response = app
        .client
        .post(app.url("/v1/auth/logout"))
        .bearer_auth(&bearer)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Gated", "slug": "gated", "body": long_body(4), "section": "s", "access": "subscribers", "status": "published"}))
        .await;
    for pair in [
        [format!("Bearer {admin}"), "Bearer not-a-token".to_string()],
        ["Bearer not-a-token".to_string(), format!("Bearer {admin}")],
        [format!("Bearer {admin}"), format!("Bearer {admin}")],
    ] {
        let response = app
            .client
            .get(app.url("/v1/articles/gated"))
            .header("authorization", &pair[0])
            .header("authorization", &pair[1])
            .send()
            .await
            .unwrap();
        assert_problem(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn one_address_is_one_account_however_it_is_typed() {
    let app = TestApp::spawn().await;
    let register = |email: &str| {
        app.post(
            "/v1/auth/register",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
    };
    let created = register("zo\u{e9}@example.org").await;
    assert_eq!(created.status(), 201);
    for same in [
        "zoe\u{301}@example.org",
        "ZOE\u{301}@EXAMPLE.ORG",
        "\u{ff5a}o\u{e9}@example.org",
    ] {
        assert_problem(register(same).await, 409, "email_taken").await;
    }
    // Sign-in with the decomposed spelling finds the same account.
    app.login("zoe\u{301}@example.org", PASSWORD).await;
    for invisible in [
        "zo\u{e9}\u{200b}@example.org",
        "z\u{200d}o\u{e9}@example.org",
        "\u{feff}zo\u{e9}@example.org",
    ] {
        let refused = assert_problem(register(invisible).await, 422, "validation_failed").await;
        assert_eq!(refused["errors"][0]["field"], "email", "{refused}");
    }
}

#[tokio::test]
async fn control_characters_in_query_parameters_are_a_bad_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.reader("fay@example.org").await;
    for path in [
        "/v1/admin/accounts?q=%00",
        "/v1/admin/accounts?q=fay%0A",
        "/v1/admin/audit?action=%7F",
        "/v1/articles?section=%C2%85",
        "/v1/articles/anything?gift=%01",
    ] {
        let response = app.get(path, Some(&admin)).await;
        assert_problem(response, 400, "invalid_request").await;
    }
    let found: Value = app
        .get("/v1/admin/accounts?q=fay", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
}

/// A client that pipelines requests and never reads the answers: the service stops
/// reading its requests once answers wait to leave (so its memory stays flat), and
/// closes the connection after `PAYWALL_WRITE_TIMEOUT_SECS` without a byte going out.
#[tokio::test]
async fn a_client_that_never_reads_is_held_to_one_round_of_answers_and_let_go() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let app = TestApp::spawn_with(&[("PAYWALL_WRITE_TIMEOUT_SECS", "3")]).await;
    let admin = app.admin_token().await;
    // A free article: every answer is its whole text, about 40 KB.
    app.article(
        &admin,
        json!({"title": "Long", "slug": "long", "body": long_body(400), "section": "s",
               "access": "free", "status": "published"}),
    )
    .await;
    let rss_before = resident_kib(app.pid());
    let address = app.base.trim_start_matches("http://").to_string();
    let pid = app.pid();
    let started = Instant::now();
    let (written, rss_during, closed_after, answers) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let chunk = "GET /v1/articles/long HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(100);
        let mut written = 0usize;
        // Two seconds of sending whatever the connection takes, reading nothing.
        while started.elapsed() < Duration::from_secs(2) {
            match stream.write(chunk.as_bytes()) {
                Ok(n) => written += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("the connection failed before the write timeout: {e}"),
            }
        }
        let rss_during = resident_kib(pid);
        // Past the write timeout, read what was sent before the service gave up: the
        // connection ends (end of stream or reset) instead of answering every request.
        std::thread::sleep(Duration::from_millis(2_500));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut received = Vec::new();
        let mut buffer = vec![0u8; 1 << 16];
        let ended = loop {
            match stream.read(&mut buffer) {
                Ok(0) => break true,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(e) => panic!("the connection is still open: {e}"),
            }
        };
        assert!(ended);
        let answers = received
            .windows(15)
            .filter(|w| w == b"HTTP/1.1 200 OK")
            .count();
        (written, rss_during, started.elapsed(), answers)
    })
    .await
    .unwrap();
    let sent = written / "GET /v1/articles/long HTTP/1.1\r\nHost: localhost\r\n\r\n".len();
    assert!(
        rss_during < rss_before + 24 * 1024,
        "resident memory grew from {rss_before} to {rss_during} KiB while {sent} requests waited"
    );
    assert!(
        answers < sent,
        "{answers} answers for {sent} requests: the service read on while nobody read"
    );
    assert!(closed_after < Duration::from_secs(12), "{closed_after:?}");
    // Everyone else is served as before.
    assert_eq!(app.get("/healthz", None).await.status(), 200);

    // A client that reads slowly but steadily is not cut off, however long the whole
    // takes: the time limit runs from the last byte that went out.
    let address = app.base.trim_start_matches("http://").to_string();
    let (answers, took, statuses, tail) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let chunk = "GET /v1/articles/long HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(100);
        stream.write_all(chunk.as_bytes()).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut received = Vec::new();
        let mut buffer = vec![0u8; 1 << 18];
        loop {
            std::thread::sleep(Duration::from_millis(300));
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(e) => panic!(
                    "a steady reader was cut off after {:?}: {e}",
                    started.elapsed()
                ),
            }
        }
        let answers = received
            .windows(15)
            .filter(|w| w == b"HTTP/1.1 200 OK")
            .count();
        // Every status line, to say what came instead when an answer is missing.
        let statuses: Vec<String> = received
            .windows(12)
            .filter(|w| w.starts_with(b"HTTP/1.1 "))
            .map(|w| String::from_utf8_lossy(&w[9..]).to_string())
            .collect();
        let tail =
            String::from_utf8_lossy(&received[received.len().saturating_sub(300)..]).to_string();
        (answers, started.elapsed(), statuses, tail)
    })
    .await
    .unwrap();
    assert_eq!(
        answers,
        101,
        "every answer reaches a steady reader (statuses: {:?}; the last bytes: {tail:?})",
        statuses.iter().filter(|s| *s != "200").collect::<Vec<_>>()
    );
    assert!(
        took > Duration::from_secs(3),
        "the steady read took {took:?}, under the timeout"
    );
}
