//! The reader's website in a real browser: Debian's Chromium, driven over the W3C
//! WebDriver protocol by chromedriver (spoken here with reqwest: a session, a page,
//! elements, clicks, keys, scripts, screenshots). Each story runs in fresh browser
//! profiles; axe-core checks every page for serious or critical accessibility faults.
//!
//! `PAYWALL_TEST_CHROMEDRIVER` names chromedriver and `PAYWALL_TEST_AXE` axe.min.js
//! (`.ci/run` installs both); without them the stories say they were skipped.
//! `PAYWALL_TEST_SCREENSHOTS` names a folder to save the article page's screenshots in.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

/// The W3C web element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    process: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A chromedriver of this test's own, when the machine has one.
async fn driver() -> Option<Driver> {
    let Ok(path) = std::env::var("PAYWALL_TEST_CHROMEDRIVER") else {
        println!("browser stories skipped: set PAYWALL_TEST_CHROMEDRIVER (see README)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        process,
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
    };
    let started = Instant::now();
    while driver
        .client
        .get(format!("{}/status", driver.base))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(driver)
}

/// One browser window with a fresh profile.
struct Browser<'a> {
    driver: &'a Driver,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn browser(&self, width: u32, height: u32) -> Browser<'_> {
        self.browser_in("en-GB", width, height).await
    }

    /// A browser whose reader asks for `language` first.
    async fn browser_in(&self, language: &str, width: u32, height: u32) -> Browser<'_> {
        let profile = tempfile::tempdir().unwrap();
        let binary =
            std::env::var("PAYWALL_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--lang={language}"), format!("--window-size={width},{height}"),
                         format!("--user-data-dir={}", profile.path().display())],
                "prefs": {"intl.accept_languages": language}
            }
        }}});
        let answer: Value = self
            .client
            .post(format!("{}/session", self.base))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Browser {
            driver: self,
            session,
            _profile: profile,
        }
    }
}

impl Browser<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.driver.base, self.session);
        let mut request = self.driver.client.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"].get("error").is_some() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("not an element: {e}"))
                    .to_string()
            })
            .collect()
    }

    async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        assert!(
            !all.is_empty(),
            "no element matches {css} on {}",
            self.url().await
        );
        all[0].clone()
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Clicks a link or a form's button, and waits until the page it leads to has
    /// loaded: the old document is marked first, and a loaded document without the
    /// mark is the new one (a click may return before its navigation starts).
    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.script("window.__paywallOldPage = true; return null;")
            .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
        let started = Instant::now();
        loop {
            let loaded = self
                .try_script(
                    "return window.__paywallOldPage === undefined && document.readyState === 'complete';",
                )
                .await;
            if loaded == Some(json!(true)) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "clicking {css} led nowhere"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A script's result, or None while the page is between documents.
    async fn try_script(&self, script: &str) -> Option<Value> {
        let url = format!("{}/session/{}/execute/sync", self.driver.base, self.session);
        let answer: Value = self
            .driver
            .client
            .post(url)
            .json(&json!({"script": script, "args": []}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        answer["value"]
            .get("error")
            .is_none()
            .then(|| answer["value"].clone())
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn page_text(&self) -> String {
        self.text("body").await
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// axe-core over the page: no serious or critical violation.
    async fn assert_accessible(&self) {
        let Ok(path) = std::env::var("PAYWALL_TEST_AXE") else {
            println!("accessibility check skipped: set PAYWALL_TEST_AXE to axe.min.js");
            return;
        };
        let axe = std::fs::read_to_string(path).expect("read axe.min.js");
        self.script(&axe).await;
        let result = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({"script": "const done = arguments[arguments.length - 1]; \
                    axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html).slice(0, 3)})))).catch(e => done([{id: 'axe failed', impact: 'critical', nodes: [String(e)]}]));",
                    "args": []})),
            )
            .await;
        let bad: Vec<&Value> = result
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(bad.is_empty(), "{}: {bad:#?}", self.url().await);
    }

    async fn screenshot(&self, name: &str) {
        let Ok(folder) = std::env::var("PAYWALL_TEST_SCREENSHOTS") else {
            return;
        };
        use base64::Engine as _;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(std::path::Path::new(&folder).join(name), bytes).unwrap();
    }

    async fn close(self) {
        let url = format!("{}/session/{}", self.driver.base, self.session);
        let _ = self.driver.client.delete(url).send().await;
    }
}

/// The demo's articles (one of each access level, and their real text), one more
/// metered article, a plan, and a subscriber.
async fn newsroom(env: &[(&str, &str)]) -> (TestApp, String) {
    let mut all = vec![("PAYWALL_SITE", "on"), ("PAYWALL_METER_ANONYMOUS", "2")];
    all.extend_from_slice(env);
    let app = TestApp::spawn_with(&all).await;
    let admin = app.admin_token().await;
    for sample in paywall::demo::ARTICLES {
        app.article(
            &admin,
            json!({"title": sample.title, "slug": sample.slug, "section": sample.section,
                   "access": sample.access, "status": sample.status, "author": sample.author,
                   "standfirst": sample.standfirst,
                   "body": format!("{}\n\n{END}", sample.body)}),
        )
        .await;
    }
    app.article(
        &admin,
        json!({"title": "A swim across the river, for everyone", "slug": "river-swim",
               "section": "culture", "access": "metered", "status": "published",
               "body": format!("{}\n\n{END}", long_body(8))}),
    )
    .await;
    app.post(
        "/v1/admin/plans",
        Some(&admin),
        json!({"id": "digital", "name": "Digital", "checkout_url": "https://buy.stripe.com/test_digital"}),
    )
    .await;
    let (id, _) = app.reader("subscriber@browser.example").await;
    app.store()
        .await
        .set_subscription(&id, "digital", now() - 60, None)
        .await
        .unwrap();
    (app, admin)
}

/// The sentence that ends every article: in the subscribers' part, never in a teaser.
const END: &str = "The last paragraph, for those who read to the end.";
const GATED_ARTICLE: &str = "/articles/budget-2027-where-the-money-goes";

async fn sign_in(browser: &Browser<'_>, app: &TestApp, email: &str, password: &str) {
    browser.go(&app.url("/signin")).await;
    browser.type_into("#email", email).await;
    browser.type_into("#password", password).await;
    browser.click("form[action='/signin'] button").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_meets_the_paywall_registers_uses_the_meter_and_a_subscriber_reads_to_the_end() {
    let Some(driver) = driver().await else { return };
    let (app, _) = newsroom(&[]).await;

    let reader = driver.browser(1280, 900).await;
    reader.go(&app.url("/")).await;
    assert!(reader
        .page_text()
        .await
        .contains("Article reserved for our subscribers"));
    reader.assert_accessible().await;
    reader.click(&format!("a[href='{GATED_ARTICLE}']")).await;
    let message = reader.text(".paywall .message").await;
    assert!(
        message.starts_with("You have ")
            && message.ends_with("The following is for subscribers only."),
        "{message}"
    );
    assert!(!reader.page_text().await.contains(END));
    reader.assert_accessible().await;
    reader.screenshot("article-teaser.png").await;

    // The meter: two free metered articles, then the paywall.
    reader
        .go(&app.url("/articles/library-late-fees-abolished"))
        .await;
    assert!(reader.find_all(".paywall").await.is_empty());
    assert_eq!(
        reader.text(".meter").await,
        "1 free article left this month"
    );
    reader.go(&app.url("/articles/river-swim")).await;
    assert!(reader.find_all(".paywall").await.is_empty());
    assert_eq!(
        reader.text(".meter").await,
        "This was your last free article this month."
    );
    reader
        .go(&app.url("/articles/library-late-fees-abolished"))
        .await;
    assert!(
        reader.find_all(".paywall").await.is_empty(),
        "an article read this month stays open"
    );

    // A registered article: register from the paywall box, and land back on it.
    reader.go(&app.url("/articles/marche-de-noel-ouvre")).await;
    assert!(reader
        .text(".paywall .message")
        .await
        .contains("registered readers"));
    reader.click(".paywall a.button").await;
    assert!(reader.url().await.contains("/register"));
    reader.assert_accessible().await;
    reader
        .type_into("#email", "new-reader@browser.example")
        .await;
    reader.type_into("#password", PASSWORD).await;
    reader.click("form[action='/register'] button").await;
    assert!(
        reader
            .url()
            .await
            .ends_with("/articles/marche-de-noel-ouvre"),
        "{}",
        reader.url().await
    );
    assert!(reader.find_all(".paywall").await.is_empty());
    assert!(reader.page_text().await.contains(END));
    reader.close().await;

    // A subscriber signs in and reads to the end, on a phone too.
    let subscriber = driver.browser(1280, 900).await;
    sign_in(&subscriber, &app, "subscriber@browser.example", PASSWORD).await;
    subscriber.go(&app.url(GATED_ARTICLE)).await;
    assert!(subscriber.find_all(".paywall").await.is_empty());
    assert!(subscriber.text(".gated").await.contains(END));
    subscriber.assert_accessible().await;
    subscriber.screenshot("article-full.png").await;
    subscriber.close().await;
    let phone = driver.browser(390, 844).await;
    phone.go(&app.url(GATED_ARTICLE)).await;
    let overflow = phone
        .script("return document.documentElement.scrollWidth > window.innerWidth;")
        .await;
    assert_eq!(overflow, json!(false), "the page fits a phone's width");
    phone.screenshot("article-phone.png").await;
    phone.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gifts_an_article_opened_in_a_fresh_profile_and_signs_out_everywhere() {
    let Some(driver) = driver().await else { return };
    let (app, _) = newsroom(&[]).await;
    let subscriber = driver.browser(1280, 900).await;
    sign_in(&subscriber, &app, "subscriber@browser.example", PASSWORD).await;
    subscriber.go(&app.url(GATED_ARTICLE)).await;
    subscriber.click("form.gift button").await;
    let link_id = subscriber.find("#gift-link").await;
    let link = subscriber
        .call(
            reqwest::Method::GET,
            &format!("/element/{link_id}/property/value"),
            None,
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(link.contains(&format!("{GATED_ARTICLE}?gift=")), "{link}");
    subscriber.assert_accessible().await;

    let friend = driver.browser(1280, 900).await;
    friend.go(&link).await;
    assert!(friend.find_all(".paywall").await.is_empty());
    assert!(friend.page_text().await.contains(END));
    friend.go(&app.url(GATED_ARTICLE)).await;
    assert_eq!(
        friend.find_all(".paywall").await.len(),
        1,
        "without the link, the paywall"
    );
    friend.close().await;

    // Another device, then "sign out everywhere" from the account page.
    let tablet = driver.browser(1024, 768).await;
    sign_in(&tablet, &app, "subscriber@browser.example", PASSWORD).await;
    subscriber.go(&app.url("/account")).await;
    assert!(subscriber.page_text().await.contains("this device"));
    subscriber.assert_accessible().await;
    subscriber
        .click("form[action='/account/sessions'] button")
        .await;
    assert!(subscriber
        .page_text()
        .await
        .contains("signed out on every device"));
    tablet.go(&app.url(GATED_ARTICLE)).await;
    assert_eq!(
        tablet.find_all(".paywall").await.len(),
        1,
        "the other device is signed out"
    );
    assert!(!tablet.find_all("a[href='/signin']").await.is_empty());
    tablet.close().await;
    subscriber.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_resets_a_forgotten_password_from_the_mail() {
    let Some(driver) = driver().await else { return };
    let sink = crate::smtp::SmtpSink::start();
    let (app, _) = newsroom(&[
        ("PAYWALL_SMTP_URL", &sink.url),
        ("PAYWALL_MAIL_FROM", "Newsroom <news@browser.example>"),
    ])
    .await;
    let browser = driver.browser(1280, 900).await;
    browser.go(&app.url("/signin")).await;
    browser.assert_accessible().await;
    browser.click("a[href='/reset-password']").await;
    browser
        .type_into("#email", "subscriber@browser.example")
        .await;
    browser.click("form[action='/reset-password'] button").await;
    assert!(browser.text(".notice").await.contains("on its way"));
    let mail = sink.wait_for(0);
    let start = mail
        .find("/reset-password/")
        .expect("a link to the reset page");
    let token: String = mail[start + "/reset-password/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    browser
        .go(&app.url(&format!("/reset-password/{token}")))
        .await;
    browser.assert_accessible().await;
    browser
        .type_into("#new_password", "a-new-passphrase-Debussy-1862")
        .await;
    browser.click("form button[type='submit']:not(.link)").await;
    assert!(browser
        .page_text()
        .await
        .contains("Your password is changed"));
    sign_in(
        &browser,
        &app,
        "subscriber@browser.example",
        "a-new-passphrase-Debussy-1862",
    )
    .await;
    browser.go(&app.url(GATED_ARTICLE)).await;
    assert!(browser.find_all(".paywall").await.is_empty());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_in_both_languages() {
    let Some(driver) = driver().await else { return };
    let (app, _) = newsroom(&[("PAYWALL_LANGUAGE", "fr")]).await;
    let browser = driver.browser_in("fr-FR", 1280, 900).await;
    for path in [
        "/",
        "/sections/politics",
        "/articles/night-trains-return",
        GATED_ARTICLE,
        "/signin",
        "/register",
        "/reset-password",
        "/reset-password/not-a-token",
        "/subscribe",
        "/no-such-page",
    ] {
        browser.go(&app.url(path)).await;
        browser.assert_accessible().await;
    }
    browser.go(&app.url(GATED_ARTICLE)).await;
    let message = browser.text(".paywall .message").await;
    assert!(message.starts_with("Il vous reste "), "{message}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_reads_on_one_device_at_a_time_and_continues_reading_on_another() {
    let Some(driver) = driver().await else { return };
    let (app, _) = newsroom(&[]).await;
    // The plan has one seat. A laptop (in English) reads first.
    let laptop = driver.browser(1280, 900).await;
    sign_in(&laptop, &app, "subscriber@browser.example", PASSWORD).await;
    laptop.go(&app.url(GATED_ARTICLE)).await;
    assert!(laptop.find_all(".paywall").await.is_empty());
    assert!(laptop.text(".gated").await.contains(END));

    // A phone (in French) signs in too: it is refused the text, and offered to continue.
    let phone = driver.browser_in("fr-FR", 390, 844).await;
    sign_in(&phone, &app, "subscriber@browser.example", PASSWORD).await;
    phone.go(&app.url(GATED_ARTICLE)).await;
    let message = phone.text(".paywall .message").await;
    assert!(
        message.starts_with("Il vous reste ")
            && message.ends_with("Votre abonnement est en cours de lecture sur un autre appareil."),
        "{message}"
    );
    assert!(!phone.page_text().await.contains(END));
    assert!(phone
        .text(".paywall .seats")
        .await
        .contains("un seul appareil"));
    assert_eq!(phone.text(".paywall button").await, "Continuer à lire ici");
    phone.assert_accessible().await;
    let overflow = phone
        .script("return document.documentElement.scrollWidth > window.innerWidth;")
        .await;
    assert_eq!(overflow, json!(false), "the page fits a phone's width");
    phone.screenshot("article-reading-elsewhere.png").await;

    // "Continuer à lire ici": the phone reads, back on the same article.
    phone.click(".paywall button").await;
    assert!(
        phone.url().await.ends_with(GATED_ARTICLE),
        "{}",
        phone.url().await
    );
    assert!(phone.find_all(".paywall").await.is_empty());
    assert!(phone.text(".gated").await.contains(END));

    // The laptop, still signed in, now sees the message and takes the seat back.
    laptop.go(&app.url(GATED_ARTICLE)).await;
    let message = laptop.text(".paywall .message").await;
    assert!(
        message.ends_with("Your subscription is being read on another device."),
        "{message}"
    );
    assert!(!laptop.page_text().await.contains(END));
    assert!(
        !laptop.find_all("a[href='/account']").await.is_empty(),
        "still signed in"
    );
    laptop.assert_accessible().await;
    laptop.go(&app.url("/account")).await;
    assert!(laptop.page_text().await.contains("reading now"));
    laptop.go(&app.url(GATED_ARTICLE)).await;
    laptop.click(".paywall button").await;
    assert!(laptop.text(".gated").await.contains(END));
    phone.go(&app.url(GATED_ARTICLE)).await;
    assert_eq!(phone.find_all(".paywall").await.len(), 1);
    laptop.close().await;
    phone.close().await;
}
