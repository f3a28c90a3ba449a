//! What a browser relies on: the session cookie set at sign-in and refresh and expired
//! at sign-out, and CORS granted to exactly the configured origins.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("paywall_session="))
        .map(str::to_string)
        .collect()
}

fn attributes(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn sign_in_and_refresh_set_the_session_cookie_and_sign_out_expires_it() {
    let app = TestApp::spawn().await;
    app.reader("gus@example.org").await;
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "gus@example.org", "password": PASSWORD}),
        )
        .await;
    let cookies = set_cookies(&login);
    let pair: Value = login.json().await.unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let access = pair["access_token"].as_str().unwrap();
    assert!(cookies[0].starts_with(&format!("paywall_session={access};")));
    let attrs = attributes(&cookies[0]);
    for wanted in ["httponly", "samesite=lax", "path=/", "max-age=900"] {
        assert!(attrs.iter().any(|a| a == wanted), "{wanted}: {attrs:?}");
    }
    assert!(
        !attrs.iter().any(|a| a == "secure"),
        "plain http: {attrs:?}"
    );

    // The cookie alone signs the reader in on reads.
    let cookie = cookies[0].split(';').next().unwrap().to_string();
    let me = app
        .client
        .get(app.url("/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let refreshed = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    let cookies = set_cookies(&refreshed);
    let next: Value = refreshed.json().await.unwrap();
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].starts_with(&format!(
        "paywall_session={};",
        next["access_token"].as_str().unwrap()
    )));

    let out = app
        .request(
            Method::POST,
            "/v1/auth/logout",
            Some(next["access_token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(out.status(), 204);
    let cookies = set_cookies(&out);
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].starts_with("paywall_session=;"), "{cookies:?}");
    assert!(
        attributes(&cookies[0]).iter().any(|a| a == "max-age=0"),
        "{cookies:?}"
    );

    // Signing out everywhere expires it too.
    let (_, token) = app.reader("hal@example.org").await;
    let everywhere = app
        .request(Method::DELETE, "/v1/me/sessions", Some(&token), None)
        .await;
    assert_eq!(everywhere.status(), 204);
    assert!(set_cookies(&everywhere)[0].starts_with("paywall_session=;"));
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let app = TestApp::spawn_with(&[("PAYWALL_PUBLIC_URL", "https://news.example")]).await;
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    let cookies = set_cookies(&login);
    assert!(
        attributes(&cookies[0]).iter().any(|a| a == "secure"),
        "{cookies:?}"
    );
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn cors_is_granted_to_exactly_the_configured_origins() {
    let app = TestApp::spawn_with(&[(
        "PAYWALL_CORS_ORIGINS",
        "https://www.news.example, https://app.news.example/",
    )])
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/v1/me"))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    for origin in ["https://www.news.example", "https://app.news.example"] {
        let response = preflight(origin).await.unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            Some(origin)
        );
        assert_eq!(
            header(&response, "access-control-allow-credentials"),
            Some("true")
        );
        let methods = header(&response, "access-control-allow-methods").unwrap();
        assert!(methods.contains("PATCH"), "{methods}");
        let headers = header(&response, "access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "{headers}"
        );
    }
    // Another origin gets no grant, on a preflight or a request.
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(header(&refused, "access-control-allow-origin").is_none());
    assert!(header(&refused, "access-control-allow-credentials").is_none());

    let token = app.admin_token().await;
    for (origin, granted) in [
        ("https://www.news.example", true),
        ("https://evil.example", false),
        ("https://www.news.example.evil.example", false),
    ] {
        let response = app
            .client
            .get(app.url("/v1/me"))
            .bearer_auth(&token)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let vary = header(&response, "vary").unwrap_or("").to_string();
        assert!(vary.contains("Origin"), "{vary}");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            granted.then_some(origin),
            "{origin}"
        );
        assert_eq!(
            header(&response, "access-control-allow-credentials"),
            granted.then_some("true")
        );
    }
}

#[tokio::test]
async fn without_cors_origins_no_origin_gets_a_grant() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .request(Method::OPTIONS, app.url("/v1/me"))
        .header("origin", "https://www.news.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(header(&response, "access-control-allow-origin").is_none());
    assert_problem(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_cors_origin_with_a_path_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = paywall_command(dir.path())
        .args(["check-config"])
        .env("PAYWALL_CORS_ORIGINS", "https://www.news.example/paywall")
        .env("PAYWALL_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PAYWALL_CORS_ORIGINS"), "{stderr}");
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_bad_request() {
    let app = TestApp::spawn().await;
    for body in [
        &b"{\"email\": \"a\xff@example.org\", \"password\": \"x\"}"[..],
        b"{\"email\": \"\xc3\", \"password\": \"x\"}",
    ] {
        let response = app
            .client
            .post(app.url("/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, "invalid_request").await;
    }
}

/// Debian's Chromium, named by `PAYWALL_TEST_CHROMIUM` (CI installs it and sets it).
fn chromium() -> Option<std::path::PathBuf> {
    match std::env::var_os("PAYWALL_TEST_CHROMIUM") {
        Some(path) => Some(path.into()),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install chromium and set PAYWALL_TEST_CHROMIUM"
            );
            println!("browser test skipped: set PAYWALL_TEST_CHROMIUM to a Chromium binary");
            None
        }
    }
}

/// Serves one HTML page at `/` on a port of its own, for as long as the test runs.
fn serve_page(html: String) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    port
}

/// Loads `url` in headless Chromium, lets its scripts run, and returns the page's DOM.
fn browse(chromium: &std::path::Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A publisher's page that signs in to the service (named by `?api=`) across origins
/// with credentials, reads the account with the cookie it got, and signs out; it writes
/// what happened into the page.
fn cross_origin_page() -> String {
    format!(
        r#"<!doctype html><html><body><pre id="out">running</pre><script>
const api = new URLSearchParams(location.search).get("api");
const out = document.getElementById("out");
(async () => {{
  const steps = [];
  try {{
    const login = await fetch(api + "/v1/auth/login", {{method: "POST", credentials: "include",
      headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{email: "{ADMIN_EMAIL}", password: "{ADMIN_PASSWORD}"}})}});
    steps.push("login=" + login.status);
    const me = await fetch(api + "/v1/me", {{credentials: "include"}});
    const account = await me.json();
    steps.push("me=" + me.status + ":" + account.email);
    steps.push("request-id=" + (me.headers.get("X-Request-Id") ? "readable" : "hidden"));
    const gone = await fetch(api + "/v1/auth/logout", {{method: "POST", credentials: "include"}});
    steps.push("logout=" + gone.status);
    const after = await fetch(api + "/v1/me", {{credentials: "include"}});
    steps.push("after=" + after.status);
  }} catch (error) {{
    steps.push("blocked:" + error.name);
  }}
  out.textContent = steps.join(" ");
}})();
</script></body></html>"#
    )
}

/// The text the page wrote.
fn outcome(dom: &str) -> String {
    let start = dom.find("<pre id=\"out\">").map(|i| i + 14).unwrap_or(0);
    let end = dom[start..].find("</pre>").map_or(dom.len(), |j| start + j);
    dom[start..end].to_string()
}

// A page on an allowed origin signs in with credentials, is then signed in by the
// cookie, and signs out; the same page on another origin gets nothing at all.
#[tokio::test]
async fn a_browser_on_an_allowed_origin_works_with_credentials_and_another_gets_nothing() {
    let Some(chromium) = chromium() else {
        return;
    };
    let allowed = serve_page(cross_origin_page());
    let other = serve_page(cross_origin_page());
    let app = TestApp::spawn_with(&[(
        "PAYWALL_CORS_ORIGINS",
        &format!("http://127.0.0.1:{allowed}"),
    )])
    .await;
    let api = app.base.clone();
    let (chromium_a, api_a) = (chromium.clone(), api.clone());
    let on_allowed = tokio::task::spawn_blocking(move || {
        browse(
            &chromium_a,
            &format!("http://127.0.0.1:{allowed}/?api={api_a}"),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        outcome(&on_allowed),
        format!("login=200 me=200:{ADMIN_EMAIL} request-id=readable logout=204 after=401"),
        "{on_allowed}"
    );
    let on_other = tokio::task::spawn_blocking(move || {
        browse(&chromium, &format!("http://127.0.0.1:{other}/?api={api}"))
    })
    .await
    .unwrap();
    assert_eq!(outcome(&on_other), "blocked:TypeError", "{on_other}");
}
