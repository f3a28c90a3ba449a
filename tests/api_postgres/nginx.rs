//! docs/nginx.conf as shipped, on Debian's nginx, in front of two instances on one
//! PostgreSQL database: only the certificate paths, the addresses and the log path are
//! substituted. Sign-in and reads go through it over TLS, both instances serve, the
//! request id is in nginx's log and the service's answer, and the request limit answers
//! as the service would.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

fn nginx_binary() -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    let found = dirs
        .into_iter()
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install nginx (Debian's nginx package)"
        );
        println!("nginx test skipped: nginx is not installed");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Nginx {
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host_of(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// The shipped file with this machine's certificate, addresses and log path.
fn substituted(dir: &std::path::Path, port: u16, upstreams: [&str; 2]) -> String {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/nginx.conf")).unwrap();
    let replacements = [
        ("listen 443 ssl", format!("listen 127.0.0.1:{port} ssl")),
        ("10.0.0.11:8080", upstreams[0].to_string()),
        ("10.0.0.12:8080", upstreams[1].to_string()),
        (
            "/etc/ssl/news.example.org/fullchain.pem",
            dir.join("cert.pem").display().to_string(),
        ),
        (
            "/etc/ssl/news.example.org/privkey.pem",
            dir.join("key.pem").display().to_string(),
        ),
        (
            "/var/log/nginx/paywall.access.log",
            dir.join("access.log").display().to_string(),
        ),
    ];
    let mut text = shipped;
    for (from, to) in replacements {
        assert!(text.contains(from), "docs/nginx.conf no longer has {from}");
        text = text.replace(from, &to);
    }
    text
}

fn start_nginx(binary: &std::path::Path, dir: &std::path::Path, site: &str) -> Nginx {
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl made no certificate");
    std::fs::write(dir.join("paywall.conf"), site).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/paywall.conf;\n}}\n"
        ),
    )
    .unwrap();
    let config = dir.join("nginx.conf");
    let checked = Command::new(binary)
        .arg("-t")
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "nginx -t refused the shipped configuration:\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let child = Command::new(binary)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Nginx { child }
}

#[tokio::test]
async fn the_shipped_nginx_configuration_fronts_two_instances() {
    let Some(binary) = nginx_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "shared");
    let env = [("PAYWALL_TRUSTED_PROXIES", "127.0.0.1")];
    let a = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let b = TestApp::start(tempfile::tempdir().unwrap(), db.url.clone(), &env).await;
    let port = free_port();
    let site = substituted(dir.path(), port, [&host_of(&a.base), &host_of(&b.base)]);
    let _nginx = start_nginx(&binary, dir.path(), &site);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let front = format!("https://127.0.0.1:{port}");
    let started = Instant::now();
    while client
        .get(format!("{front}/openapi.json"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let admin = a.admin_token().await;
    a.article(&admin, json!({"title": "Gated", "slug": "gated", "body": long_body(4), "section": "s", "access": "subscribers", "status": "published"}))
        .await;
    let registered = client
        .post(format!("{front}/v1/auth/register"))
        .json(&json!({"email": "proxied@test.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let login = client
        .post(format!("{front}/v1/auth/login"))
        .json(&json!({"email": "proxied@test.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let pair: Value = login.json().await.unwrap();
    let token = token_of(&pair);
    let mut ids = Vec::new();
    for _ in 0..10 {
        let read = client
            .get(format!("{front}/v1/articles/gated"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
        ids.push(read.headers()["x-request-id"].to_str().unwrap().to_string());
        let view: Value = read.json().await.unwrap();
        assert_eq!(view["truncated"], true, "a reader gets the teaser");
    }
    // Both instances served reads.
    for app in [&a, &b] {
        let metrics = app.get("/metrics", None).await.text().await.unwrap();
        assert!(
            metrics.contains(r#"route="/v1/articles/{slug}",status="200"}"#),
            "an instance served no read through nginx"
        );
    }
    // nginx's log line and the service's answer carry the same request id.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    for id in &ids {
        assert!(
            log.contains(&format!("request_id={id}")),
            "{id} not in\n{log}"
        );
    }
    // The request limit answers 429 problem+json with Retry-After, as the service does.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (client, front) = (client.clone(), front.clone());
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{front}/v1/auth/login"))
                .json(&json!({"email": format!("flood{i}@test.example"), "password": "wrong-password-1"}))
                .send()
                .await
                .unwrap()
        }));
    }
    let (mut limited, mut limited_by_nginx) = (0, 0);
    for task in tasks {
        let response = task.await.unwrap();
        if response.status() == 429 {
            limited += 1;
            assert!(response.headers().contains_key("retry-after"));
            let problem = assert_problem(response, 429, "rate_limited").await;
            limited_by_nginx += usize::from(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("try again in a second")),
            );
        } else {
            assert_eq!(response.status(), 401);
        }
    }
    assert!(limited > 0, "the request limit never answered");
    assert!(
        limited_by_nginx > 0,
        "only the service's own throttle answered"
    );
    // Health and metrics are not on the public side.
    for path in ["/metrics", "/readyz", "/healthz"] {
        let response = client.get(format!("{front}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}
