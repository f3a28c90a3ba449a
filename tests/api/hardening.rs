//! Sign-in and sessions against OWASP ASVS 5.0 (chapters V6 to V9) and RFC 8725: each
//! test names the requirement it checks.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A JWS built by hand, so the header can say anything: HMAC-SHA256 over it with `key`.
fn forge(header: &Value, claims: &Value, key: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn kid() -> String {
    paywall::auth::tokens::key_id(SECRET.as_bytes())
}

async fn refused_everywhere(app: &TestApp, token: &str, what: &str) {
    for path in ["/v1/articles/open", "/v1/me"] {
        let response = app.get(path, Some(token)).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 401, "{what} on {path}: {body}");
        assert!(
            body.contains("\"code\":\"invalid_token\""),
            "{what}: {body}"
        );
    }
}

// ASVS 5.0 V9.1.1 (signature checked before the contents are used), V9.1.2 (an
// algorithm allowlist without `none`), V9.1.3 (keys only from configuration: `kid`,
// `jku`, `x5u`, `jwk` never bring a key), V9.2.1 (`exp`, `nbf`), V9.2.3 (`aud`); RFC
// 8725 sections 2.1 to 2.8 and 3.1 to 3.12.
#[tokio::test]
async fn asvs_v9_rfc8725_forged_and_mangled_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Open", "slug": "open", "body": "a b", "section": "s", "access": "free", "status": "published"}))
        .await;
    let (_, real) = app.reader("forged@test.example").await;
    let claims = claims_of(&real);
    let good_header = json!({"alg": "HS256", "typ": "JWT", "kid": kid()});
    // The hand-made token with the right header and key is accepted: every refusal
    // below comes from the one thing each forgery changes.
    let control = forge(&good_header, &claims, SECRET.as_bytes());
    assert_eq!(app.get("/v1/me", Some(&control)).await.status(), 200);

    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let header_with = |key: &str, value: Value| {
        let mut h = good_header.clone();
        h[key] = value;
        h
    };
    let header_without = |key: &str| {
        let mut h = good_header.clone();
        h.as_object_mut().unwrap().remove(key);
        h
    };
    let key = SECRET.as_bytes();
    let mut forgeries: Vec<(String, String)> = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = header_with("alg", json!(alg));
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        forgeries.push((format!("alg {alg}, no signature"), unsigned));
        forgeries.push((
            format!("alg {alg}, HMAC signature"),
            forge(&header, &claims, key),
        ));
    }
    for alg in [
        "HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA", "hs256", "",
    ] {
        forgeries.push((
            format!("alg {alg:?} with the right key"),
            forge(&header_with("alg", json!(alg)), &claims, key),
        ));
    }
    forgeries.extend([
        ("no alg".to_string(), forge(&header_without("alg"), &claims, key)),
        ("no kid".to_string(), forge(&header_without("kid"), &claims, key)),
        ("unknown kid".to_string(), forge(&header_with("kid", json!("not-a-key-id")), &claims, key)),
        ("kid as a path".to_string(), forge(&header_with("kid", json!("../../../../dev/null")), &claims, b"")),
        ("kid as SQL".to_string(), forge(&header_with("kid", json!("' OR '1'='1")), &claims, key)),
        ("kid of another type".to_string(), forge(&header_with("kid", json!(42)), &claims, key)),
        ("right kid, wrong key".to_string(), forge(&good_header, &claims, b"attacker-key-0123456789abcdef-0123")),
        (
            "jku pointing elsewhere, attacker key".to_string(),
            forge(&header_with("jku", json!("https://attacker.example/jwks.json")), &claims, b"attacker-key-0123456789abcdef-0123"),
        ),
        (
            "embedded jwk, attacker key".to_string(),
            forge(
                &header_with("jwk", json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(b"attacker-key-0123456789abcdef-0123")})),
                &claims,
                b"attacker-key-0123456789abcdef-0123",
            ),
        ),
        ("expired".to_string(), forge(&good_header, &with("exp", json!(now() - 60)), key)),
        ("exp as a string".to_string(), forge(&good_header, &with("exp", json!((now() + 600).to_string())), key)),
        ("exp as a float".to_string(), forge(&good_header, &with("exp", json!((now() + 600) as f64 + 0.5)), key)),
        ("exp null".to_string(), forge(&good_header, &with("exp", Value::Null), key)),
        ("exp as an array".to_string(), forge(&good_header, &with("exp", json!([now() + 600])), key)),
        ("nbf in the future".to_string(), forge(&good_header, &with("nbf", json!(now() + 600)), key)),
        ("nbf as a string".to_string(), forge(&good_header, &with("nbf", json!(now().to_string())), key)),
        ("iat as a string".to_string(), forge(&good_header, &with("iat", json!(now().to_string())), key)),
        ("no exp".to_string(), forge(&good_header, &without("exp"), key)),
        ("no sub".to_string(), forge(&good_header, &without("sub"), key)),
        ("no sid".to_string(), forge(&good_header, &without("sid"), key)),
        ("no iss".to_string(), forge(&good_header, &without("iss"), key)),
        ("no aud".to_string(), forge(&good_header, &without("aud"), key)),
        ("no role".to_string(), forge(&good_header, &without("role"), key)),
        ("wrong iss".to_string(), forge(&good_header, &with("iss", json!("another-issuer")), key)),
        ("wrong aud".to_string(), forge(&good_header, &with("aud", json!("another-service")), key)),
        ("aud as a list without us".to_string(), forge(&good_header, &with("aud", json!(["another-service"])), key)),
        ("sub of another account".to_string(), forge(&good_header, &with("sub", json!("0193b3a2-0000-7000-8000-000000000000")), key)),
        ("unknown role".to_string(), forge(&good_header, &with("role", json!("owner")), key)),
        ("payload not JSON".to_string(), {
            let h = URL_SAFE_NO_PAD.encode(good_header.to_string());
            let p = URL_SAFE_NO_PAD.encode(b"not json");
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(format!("{h}.{p}").as_bytes());
            format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
        }),
    ]);
    let parts: Vec<&str> = real.split('.').collect();
    forgeries.extend([
        (
            "two segments".to_string(),
            format!("{}.{}", parts[0], parts[1]),
        ),
        ("four segments".to_string(), format!("{real}.{}", parts[2])),
        ("one segment".to_string(), parts[1].to_string()),
        (
            "empty signature".to_string(),
            format!("{}.{}.", parts[0], parts[1]),
        ),
        (
            "signature of another token".to_string(),
            format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(with("role", json!("admin")).to_string()),
                parts[2]
            ),
        ),
        ("padding added".to_string(), format!("{real}==")),
        (
            "oversized".to_string(),
            format!("{}.{}.{}", parts[0], "A".repeat(6_000), parts[2]),
        ),
        ("spaces inside".to_string(), real.replacen('.', " . ", 1)),
    ]);
    for (what, token) in &forgeries {
        refused_everywhere(&app, token, what).await;
    }
    assert!(forgeries.len() > 40);
}

// ASVS 5.0 V9.1.3: a rotation keeps earlier tokens valid until the old secret goes.
#[tokio::test]
async fn asvs_v9_1_3_key_rotation_without_signing_everyone_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "rotate");
    let db_url = db.url.clone();
    let old = "the-old-secret-0123456789abcdef-0123456";
    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db_url.clone(),
        &[("PAYWALL_JWT_SECRET", old)],
    )
    .await;
    let before = app.admin_token().await;
    drop(app);

    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db_url.clone(),
        &[
            ("PAYWALL_JWT_SECRET", SECRET),
            ("PAYWALL_JWT_PREVIOUS_SECRETS", old),
        ],
    )
    .await;
    assert_eq!(
        app.get("/v1/me", Some(&before)).await.status(),
        200,
        "signed with the previous secret"
    );
    let after = app.admin_token().await;
    assert_ne!(claims_of(&after)["sid"], Value::Null);
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(after.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], kid());
    assert_eq!(app.get("/v1/me", Some(&after)).await.status(), 200);
    drop(app);

    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db_url,
        &[("PAYWALL_JWT_SECRET", SECRET)],
    )
    .await;
    assert_problem(app.get("/v1/me", Some(&before)).await, 401, "invalid_token").await;
    assert_eq!(app.get("/v1/me", Some(&after)).await.status(), 200);
}

// ASVS 5.0 V7.3.1 (inactivity timeout) and V7.3.2 (absolute lifetime).
#[tokio::test]
async fn asvs_v7_3_sessions_end_when_idle_and_at_their_absolute_lifetime() {
    let idle = TestApp::spawn_with(&[("PAYWALL_SESSION_IDLE_SECS", "1")]).await;
    idle.reader("idle@test.example").await;
    let pair = idle.login("idle@test.example", PASSWORD).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let refresh = idle
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_problem(refresh, 401, "invalid_token").await;

    let absolute = TestApp::spawn_with(&[("PAYWALL_REFRESH_TOKEN_TTL_SECS", "2")]).await;
    absolute.reader("short@test.example").await;
    let pair = absolute.login("short@test.example", PASSWORD).await;
    let token = token_of(&pair);
    assert_eq!(absolute.get("/v1/me", Some(&token)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    // The access token's own expiry is 15 minutes away; the session has ended.
    assert_problem(
        absolute.get("/v1/me", Some(&token)).await,
        401,
        "invalid_token",
    )
    .await;
    let refresh = absolute
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_problem(refresh, 401, "invalid_token").await;
}

// ASVS 5.0 V7.2.1: tokens are read from the Authorization header or the session cookie
// only; one in the URL is ignored, so it never lands in logs or browser history.
#[tokio::test]
async fn asvs_v7_2_1_tokens_in_the_url_are_ignored() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Reg", "slug": "reg", "body": "One.\n\nTwo.", "section": "s", "access": "registered", "status": "published"}))
        .await;
    let (_, token) = app.reader("url@test.example").await;
    for query in ["access_token", "token", "jwt", "authorization"] {
        let view: Value = app
            .get(&format!("/v1/articles/reg?{query}={token}"), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(view["truncated"], true, "?{query}= must not sign anyone in");
    }
    assert_problem(
        app.get(&format!("/v1/me?access_token={token}"), None).await,
        401,
        "unauthorized",
    )
    .await;
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

// ASVS 5.0 V6.3.8: unknown and known emails answer alike, in about the same time.
#[tokio::test]
async fn asvs_v6_3_8_unknown_and_known_emails_take_the_same_time() {
    let app = TestApp::spawn_with(&[
        ("PAYWALL_LOGIN_MAX_FAILURES", "10000"),
        ("PAYWALL_LOGIN_MAX_FAILURES_PER_ADDRESS", "10000"),
    ])
    .await;
    app.reader("known@test.example").await;
    let attempt = |email: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            let response = app
                .post(
                    "/v1/auth/login",
                    None,
                    json!({"email": email, "password": "not-the-password-1"}),
                )
                .await;
            let elapsed = started.elapsed();
            (elapsed, response.status(), response.text().await.unwrap())
        }
    };
    // Warm up both paths once.
    attempt("known@test.example").await;
    attempt("unknown@test.example").await;
    // Pairs taken back to back, in alternating order, so that load from other tests
    // running at the same time weighs on both sides alike.
    let (mut known, mut unknown, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..25 {
        let (k, u) = if round % 2 == 0 {
            let k = attempt("known@test.example").await;
            (k, attempt("unknown@test.example").await)
        } else {
            let u = attempt("unknown@test.example").await;
            (attempt("known@test.example").await, u)
        };
        assert_eq!((k.1.as_u16(), u.1.as_u16()), (401, 401));
        assert_eq!(k.2, u.2, "the same answer");
        ratios.push(k.0.as_secs_f64() / u.0.as_secs_f64());
        known.push(k.0);
        unknown.push(u.0);
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        (0.7..=1.3).contains(&ratio),
        "known and unknown emails differ by more than 30%: median ratio {ratio:.2}, medians {known:?} and {unknown:?}"
    );
}

// ASVS 5.0 V6.2.8 with the cost rule: a hash weaker than the configured cost (here an
// imported Argon2id at 8 MiB) is re-made at the configured cost on the next sign-in.
#[tokio::test]
async fn hashes_below_the_configured_cost_are_remade_on_sign_in() {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let app = TestApp::spawn().await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(8 * 1024, 1, 1, None).unwrap(),
    )
    .hash_password(
        b"cheap-old-hash-Gounod-1818",
        &SaltString::generate(&mut OsRng),
    )
    .unwrap()
    .to_string();
    let store = app.store().await;
    let account = store
        .insert_account(&paywall::store::NewAccount {
            email: "weak@test.example",
            display_name: None,
            password_hash: Some(&weak),
            role: paywall::domain::Role::Reader,
            now: now(),
        })
        .await
        .unwrap();
    app.login("weak@test.example", "cheap-old-hash-Gounod-1818")
        .await;
    let mut upgraded = None;
    for _ in 0..100 {
        let hash = store
            .account_by_id(&account.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        if hash != weak {
            upgraded = Some(hash);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let upgraded = upgraded.expect("the hash was re-made");
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    app.login("weak@test.example", "cheap-old-hash-Gounod-1818")
        .await;
}

// Argon2 runs on a bounded pool off the async workers: a flood of sign-ins slows
// article reads only a little.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_does_not_starve_article_reads() {
    let app = std::sync::Arc::new(
        TestApp::spawn_with(&[
            ("PAYWALL_LOGIN_MAX_FAILURES_PER_ADDRESS", "100000"),
            ("PAYWALL_LOGIN_MAX_FAILURES", "10000"),
        ])
        .await,
    );
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Read", "slug": "read", "body": long_body(8), "section": "s", "access": "subscribers", "status": "published"}))
        .await;
    app.reader("flood@test.example").await;
    // Reads alone, for comparison.
    let mut calm = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        assert_eq!(app.get("/v1/articles/read", None).await.status(), 200);
        calm.push(started.elapsed());
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flooders = Vec::new();
    for i in 0..16 {
        let (app, stop) = (app.clone(), stop.clone());
        flooders.push(tokio::spawn(async move {
            let mut logins = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let password = if i % 2 == 0 {
                    PASSWORD
                } else {
                    "wrong-password-for-the-flood"
                };
                let response = app
                    .post(
                        "/v1/auth/login",
                        None,
                        json!({"email": "flood@test.example", "password": password}),
                    )
                    .await;
                assert!(response.status() == 200 || response.status() == 401);
                logins += 1;
            }
            logins
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut flooded = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let started = Instant::now();
        assert_eq!(app.get("/v1/articles/read", None).await.status(), 200);
        flooded.push(started.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut logins = 0;
    for flooder in flooders {
        logins += flooder.await.unwrap();
    }
    flooded.sort();
    let p50 = flooded[flooded.len() / 2];
    let p95 = flooded[flooded.len() * 95 / 100];
    eprintln!(
        "reads: calm p50 {:?}; during {logins} logins: {} reads, p50 {p50:?}, p95 {p95:?}",
        median(calm),
        flooded.len()
    );
    assert!(logins >= 20, "the flood ran ({logins} logins)");
    assert!(
        p50 < Duration::from_millis(50),
        "read p50 {p50:?} during the flood"
    );
    assert!(
        p95 < Duration::from_millis(150),
        "read p95 {p95:?} during the flood"
    );
}

// HTTP hygiene: TRACE refused, security headers, header size limits.
#[tokio::test]
async fn http_hygiene() {
    let app = TestApp::spawn().await;
    for method in ["TRACE", "TRACK"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        for path in ["/v1/articles", "/healthz", "/nowhere"] {
            assert_problem(
                app.request(method.clone(), path, None, None).await,
                405,
                "method_not_allowed",
            )
            .await;
        }
    }
    for path in ["/healthz", "/v1/articles", "/v1/me", "/nowhere"] {
        let response = app.get(path, None).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
    }
    let big = "a".repeat(20 * 1024);
    let response = app
        .client
        .get(app.url("/v1/articles"))
        .header("x-padding", big)
        .send()
        .await
        .unwrap();
    assert_problem(response, 431, "headers_too_large").await;
    let mut request = app.client.get(app.url("/v1/articles"));
    for i in 0..120 {
        request = request.header(format!("x-h{i}"), "v");
    }
    assert_eq!(request.send().await.unwrap().status(), 431);
}
