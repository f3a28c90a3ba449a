//! The reader's website through the real binary: pages parsed as HTML documents (never
//! grepped as templates), for every access level and reader; no gated text anywhere in
//! a page that should not hold it; JSON-LD that parses and says the right thing; forms
//! with CSRF tokens, sign-in, registration and sign-out; English and French.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Response, StatusCode};
use scraper::{Html, Selector};
use serde_json::{json, Value};

use crate::helpers::*;

/// The sentence that ends every test article: it is in the gated part, never in a teaser.
const GATED: &str = "This closing sentence is for those who may read it all.";

fn body_with_gated_end() -> String {
    format!("{}\n\n{GATED}", long_body(8))
}

async fn site() -> (TestApp, String) {
    let app = TestApp::spawn_with(&[("PAYWALL_SITE", "on")]).await;
    let admin = app.admin_token().await;
    for (slug, access) in [
        ("free-one", "free"),
        ("registered-one", "registered"),
        ("metered-one", "metered"),
        ("subscribers-one", "subscribers"),
    ] {
        app.article(
            &admin,
            json!({"title": format!("Title of {slug}"), "slug": slug, "section": "politics",
                   "access": access, "status": "published", "author": "A. Writer",
                   "standfirst": format!("Standfirst of {slug}."), "body": body_with_gated_end()}),
        )
        .await;
    }
    (app, admin)
}

/// A browser's cookie jar, by hand: what `Set-Cookie` sets and removes.
#[derive(Default, Clone)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn take(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let removed = text.contains("Max-Age=0") || value.is_empty();
            if removed {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

async fn get(
    app: &TestApp,
    path: &str,
    jar: &mut Jar,
    language: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = app.client.get(app.url(path));
    if !jar.0.is_empty() {
        request = request.header(COOKIE, jar.header());
    }
    if let Some(language) = language {
        request = request.header(ACCEPT_LANGUAGE, language);
    }
    let response = request.send().await.unwrap();
    finish(response, jar).await
}

async fn finish(response: Response, jar: &mut Jar) -> (StatusCode, HeaderMap, String) {
    let status = response.status();
    let headers = response.headers().clone();
    jar.take(&headers);
    (status, headers, response.text().await.unwrap())
}

async fn post_form(
    app: &TestApp,
    path: &str,
    jar: &mut Jar,
    fields: &[(&str, &str)],
    origin: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if !jar.0.is_empty() {
        request = request.header(COOKIE, jar.header());
    }
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    finish(request.send().await.unwrap(), jar).await
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&Selector::parse(css).unwrap()).collect()
}

fn text_of(doc: &Html, css: &str) -> Option<String> {
    select(doc, css)
        .first()
        .map(|e| e.text().collect::<String>().trim().to_string())
}

fn json_ld(doc: &Html) -> Value {
    let scripts = select(doc, r#"script[type="application/ld+json"]"#);
    assert_eq!(scripts.len(), 1, "one JSON-LD block");
    serde_json::from_str(&scripts[0].inner_html()).expect("JSON-LD parses")
}

/// The CSRF token a page's forms carry.
fn csrf(doc: &Html) -> String {
    select(doc, r#"input[name="csrf"]"#)[0]
        .value()
        .attr("value")
        .unwrap()
        .to_string()
}

/// Signs a browser in through the sign-in form.
async fn sign_in(app: &TestApp, email: &str, password: &str) -> Jar {
    let mut jar = Jar::default();
    let (_, _, html) = get(app, "/signin?next=/", &mut jar, None).await;
    let token = csrf(&Html::parse_document(&html));
    let (status, headers, _) = post_form(
        app,
        "/signin",
        &mut jar,
        &[
            ("csrf", &token),
            ("email", email),
            ("password", password),
            ("next", "/"),
        ],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/");
    assert!(jar.0.contains_key("paywall_session") && jar.0.contains_key("paywall_refresh"));
    jar
}

#[tokio::test]
async fn without_the_site_setting_there_are_no_pages() {
    let app = TestApp::spawn().await;
    assert_problem(app.get("/", None).await, 404, "not_found").await;
    assert_problem(app.get("/articles/x", None).await, 404, "not_found").await;
}

#[tokio::test]
async fn article_pages_show_exactly_what_the_api_gives_each_reader() {
    let (app, admin) = site().await;
    let (reader_id, _) = app.reader("site-reader@test.example").await;
    let (subscriber_id, _) = app.reader("site-subscriber@test.example").await;
    app.store()
        .await
        .set_subscription(&subscriber_id, "digital", now() - 60, Some(now() + 86_400))
        .await
        .unwrap();
    let _ = (reader_id, admin);
    let anonymous = Jar::default();
    let reader = sign_in(&app, "site-reader@test.example", PASSWORD).await;
    let subscriber = sign_in(&app, "site-subscriber@test.example", PASSWORD).await;
    for (who, jar) in [
        ("anonymous", anonymous),
        ("reader", reader),
        ("subscriber", subscriber),
    ] {
        for (slug, access) in [
            ("free-one", "free"),
            ("registered-one", "registered"),
            ("metered-one", "metered"),
            ("subscribers-one", "subscribers"),
        ] {
            let mut jar = jar.clone();
            let api = {
                let mut request = app.client.get(app.url(&format!("/v1/articles/{slug}")));
                if let Some(token) = jar.0.get("paywall_session") {
                    request = request.bearer_auth(token);
                }
                request.send().await.unwrap().json::<Value>().await.unwrap()
            };
            let (status, headers, html) =
                get(&app, &format!("/articles/{slug}"), &mut jar, None).await;
            assert_eq!(status, 200, "{who} {slug}");
            assert_eq!(headers["cache-control"], "private, no-store");
            assert!(headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"));
            let doc = Html::parse_document(&html);
            assert_eq!(text_of(&doc, "h1").unwrap(), format!("Title of {slug}"));
            let truncated = api["truncated"] == true;
            let ld = json_ld(&doc);
            assert_eq!(ld["@type"], "NewsArticle");
            assert_eq!(ld["isAccessibleForFree"], access == "free", "{who} {slug}");
            if truncated {
                // Nowhere in the answer: not in markup, attributes, meta, JSON-LD or comments.
                assert!(
                    !html.contains(GATED),
                    "{who} {slug}: gated text in the page"
                );
                let message = text_of(&doc, ".paywall .message").expect("the paywall box");
                assert_eq!(
                    message,
                    api["paywall"]["message"].as_str().unwrap(),
                    "{who} {slug}"
                );
                assert!(select(&doc, ".gated").is_empty());
                assert!(ld.get("hasPart").is_none());
                let links: Vec<&str> = select(&doc, ".paywall a")
                    .iter()
                    .filter_map(|a| a.value().attr("href"))
                    .collect();
                assert!(
                    links
                        .iter()
                        .any(|l| l.starts_with("/subscribe") || l.starts_with("/register")),
                    "{links:?}"
                );
            } else {
                assert!(select(&doc, ".paywall").is_empty(), "{who} {slug}");
                let all: String = select(&doc, "article p")
                    .iter()
                    .map(|p| p.text().collect::<String>())
                    .collect();
                assert!(all.contains(GATED), "{who} {slug}: the whole text");
                if access != "free" {
                    assert_eq!(ld["hasPart"]["cssSelector"], ".gated");
                    assert_eq!(ld["hasPart"]["isAccessibleForFree"], false);
                    let gated = text_of(&doc, ".gated").unwrap();
                    assert!(gated.contains(GATED));
                }
            }
        }
    }
}

#[tokio::test]
async fn pages_speak_french_when_the_browser_asks() {
    let (app, _) = site().await;
    let mut jar = Jar::default();
    let (_, _, html) = get(
        &app,
        "/articles/subscribers-one",
        &mut jar,
        Some("fr-FR,fr;q=0.9,en;q=0.5"),
    )
    .await;
    let doc = Html::parse_document(&html);
    assert_eq!(select(&doc, "html")[0].value().attr("lang"), Some("fr"));
    let message = text_of(&doc, ".paywall .message").unwrap();
    assert!(message.starts_with("Il vous reste "), "{message}");
    assert!(
        message.contains("\u{a0}% de cet article à lire. La suite est réservée aux abonnés."),
        "{message}"
    );
    assert_eq!(
        text_of(&doc, ".kicker .label").unwrap(),
        "Article réservé à nos abonnés"
    );
    // The API's message follows PAYWALL_LANGUAGE, not the browser.
    let api: Value = app
        .get("/v1/articles/subscribers-one", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(api["paywall"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You have "));
    let app = TestApp::spawn_with(&[("PAYWALL_SITE", "on"), ("PAYWALL_LANGUAGE", "fr")]).await;
    let admin = app.admin_token().await;
    app.article(
        &admin,
        json!({"title": "T", "slug": "t", "section": "s", "access": "subscribers",
                               "status": "published", "body": long_body(6)}),
    )
    .await;
    let api: Value = app.get("/v1/articles/t", None).await.json().await.unwrap();
    assert!(api["paywall"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Il vous reste "));
    let (_, _, html) = get(&app, "/articles/t", &mut Jar::default(), Some("de")).await;
    assert_eq!(
        select(&Html::parse_document(&html), "html")[0]
            .value()
            .attr("lang"),
        Some("fr")
    );
}

#[tokio::test]
async fn the_front_and_section_pages_list_articles_with_their_labels() {
    let (app, _) = site().await;
    let mut jar = Jar::default();
    let (status, _, html) = get(&app, "/", &mut jar, None).await;
    assert_eq!(status, 200);
    let doc = Html::parse_document(&html);
    let titles: Vec<String> = select(&doc, ".teaser h3 a")
        .iter()
        .map(|a| a.text().collect())
        .collect();
    assert_eq!(titles.len(), 4, "{titles:?}");
    let subscribers = select(&doc, ".teaser")
        .into_iter()
        .find(|t| {
            t.text()
                .collect::<String>()
                .contains("Title of subscribers-one")
        })
        .unwrap();
    assert!(subscribers
        .text()
        .collect::<String>()
        .contains("Article reserved for our subscribers"));
    assert!(!html.contains(GATED));
    let (status, _, html) = get(&app, "/sections/politics", &mut jar, None).await;
    assert_eq!(status, 200);
    assert_eq!(select(&Html::parse_document(&html), ".teaser").len(), 4);
    let (status, _, html) = get(&app, "/sections/nothing-here", &mut jar, None).await;
    assert_eq!(status, 404);
    assert!(
        text_of(&Html::parse_document(&html), "h1").is_some(),
        "a page, not JSON"
    );
    let (status, _, _) = get(&app, "/sections/politics?cursor=garbage", &mut jar, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_pages_are_pages_and_the_api_stays_json() {
    let (app, _) = site().await;
    let mut jar = Jar::default();
    let (status, headers, html) = get(&app, "/no/such/page", &mut jar, None).await;
    assert_eq!(status, 404);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        text_of(&Html::parse_document(&html), "h1").unwrap(),
        "Page not found"
    );
    let (status, _, _) = get(&app, "/articles/no-such-article", &mut jar, None).await;
    assert_eq!(status, 404);
    assert_problem(app.get("/v1/no-such-route", None).await, 404, "not_found").await;
    let css = app.get("/assets/site.css", None).await;
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[tokio::test]
async fn sign_in_works_through_the_form_and_refuses_forgeries() {
    let (app, _) = site().await;
    app.reader("form@test.example").await;
    let mut jar = Jar::default();
    let (_, _, html) = get(
        &app,
        "/signin?next=/articles/registered-one",
        &mut jar,
        None,
    )
    .await;
    let doc = Html::parse_document(&html);
    let token = csrf(&doc);
    assert_eq!(
        select(&doc, r#"input[name="next"]"#)[0]
            .value()
            .attr("value"),
        Some("/articles/registered-one")
    );
    // A wrong password: the form again, with the error, 401.
    let (status, _, html) = post_form(
        &app,
        "/signin",
        &mut jar,
        &[
            ("csrf", &token),
            ("email", "form@test.example"),
            ("password", "wrong-password-1234"),
            ("next", "/"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 401);
    let doc = Html::parse_document(&html);
    assert_eq!(
        text_of(&doc, ".error").unwrap(),
        "The email or password is not correct."
    );
    assert_eq!(
        select(&doc, "#email")[0].value().attr("value"),
        Some("form@test.example")
    );
    // No token, another token, another site: refused, not signed in.
    for (fields, origin) in [
        (
            vec![("email", "form@test.example"), ("password", PASSWORD)],
            None,
        ),
        (
            vec![
                ("csrf", "x".repeat(43).as_str()),
                ("email", "form@test.example"),
                ("password", PASSWORD),
            ],
            None,
        ),
        (
            vec![
                ("csrf", token.as_str()),
                ("email", "form@test.example"),
                ("password", PASSWORD),
            ],
            Some("https://evil.example"),
        ),
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, *v)).collect();
        let (status, _, _) = post_form(&app, "/signin", &mut jar, &fields, origin).await;
        assert_eq!(status, 403);
        assert!(!jar.0.contains_key("paywall_session"));
    }
    // An outside `next` is not followed.
    let (status, headers, _) = post_form(
        &app,
        "/signin",
        &mut jar,
        &[
            ("csrf", &token),
            ("email", "form@test.example"),
            ("password", PASSWORD),
            ("next", "//evil.example/x"),
        ],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/");
    let cookie = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("paywall_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let (_, _, html) = get(&app, "/articles/registered-one", &mut jar, None).await;
    let doc = Html::parse_document(&html);
    assert!(
        select(&doc, ".paywall").is_empty(),
        "signed in, a registered article reads"
    );
    assert!(select(&doc, r#"form[action="/signout"]"#).len() == 1);
}

#[tokio::test]
async fn a_browser_stays_signed_in_past_its_access_token_and_signs_out() {
    let (app, _) = site().await;
    app.reader("stay@test.example").await;
    let mut jar = sign_in(&app, "stay@test.example", PASSWORD).await;
    let refresh = jar.0["paywall_refresh"].clone();
    // The access token gone (as when it runs out): the refresh cookie renews it, and is
    // itself rotated.
    jar.0.remove("paywall_session");
    let (_, _, html) = get(&app, "/articles/registered-one", &mut jar, None).await;
    assert!(select(&Html::parse_document(&html), ".paywall").is_empty());
    assert!(jar.0.contains_key("paywall_session"));
    assert_ne!(jar.0["paywall_refresh"], refresh);
    // A dead session cookie is dropped, not an error page.
    jar.0.insert("paywall_session".into(), "not-a-token".into());
    let (status, _, _) = get(&app, "/", &mut jar, None).await;
    assert_eq!(status, 200);
    // Sign out: the form's token is needed, the session ends, the cookies go.
    let (_, _, html) = get(&app, "/", &mut jar, None).await;
    let token = csrf(&Html::parse_document(&html));
    let session = jar.0["paywall_session"].clone();
    let (status, _, _) = post_form(&app, "/signout", &mut jar, &[("csrf", "forged")], None).await;
    assert_eq!(status, 403);
    let (status, headers, _) = post_form(
        &app,
        "/signout",
        &mut jar,
        &[("csrf", &token)],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/");
    assert!(!jar.0.contains_key("paywall_session") && !jar.0.contains_key("paywall_refresh"));
    assert_problem(
        app.get("/v1/me", Some(&session)).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn registration_through_the_form_shows_errors_beside_their_fields() {
    let (app, _) = site().await;
    app.reader("taken@test.example").await;
    let mut jar = Jar::default();
    let (_, _, html) = get(&app, "/register", &mut jar, None).await;
    let token = csrf(&Html::parse_document(&html));
    let (status, _, html) = post_form(
        &app,
        "/register",
        &mut jar,
        &[
            ("csrf", &token),
            ("email", "not-an-email"),
            ("password", "short"),
            ("display_name", ""),
        ],
        None,
    )
    .await;
    assert_eq!(status, 422);
    let doc = Html::parse_document(&html);
    assert!(text_of(&doc, "#email-error").is_some(), "{html}");
    assert!(text_of(&doc, "#password-error").is_some());
    assert_eq!(
        select(&doc, "#email")[0].value().attr("aria-invalid"),
        Some("true")
    );
    let (status, _, html) = post_form(
        &app,
        "/register",
        &mut jar,
        &[
            ("csrf", &token),
            ("email", "taken@test.example"),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert!(text_of(&Html::parse_document(&html), "#email-error")
        .unwrap()
        .contains("already exists"));
    let (status, headers, _) = post_form(
        &app,
        "/register",
        &mut jar,
        &[
            ("csrf", &token),
            ("email", "new-reader@test.example"),
            ("password", PASSWORD),
            ("display_name", "New Reader"),
            ("next", "/articles/registered-one"),
        ],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/articles/registered-one");
    let me: Value = app
        .get("/v1/me", Some(&jar.0["paywall_session"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "new-reader@test.example");
    assert_eq!(me["display_name"], "New Reader");
}

#[tokio::test]
async fn article_markdown_is_sanitized_on_the_page() {
    let (app, admin) = site().await;
    app.article(&admin, json!({"title": "Unsafe <b>title</b>", "slug": "unsafe", "section": "s", "access": "free",
        "status": "published", "body": "Hello, [a link](javascript:alert(3)) and ![x](javascript:alert(2)).\n\n<javascript:alert(1)>"})).await;
    let (_, _, html) = get(&app, "/articles/unsafe", &mut Jar::default(), None).await;
    let doc = Html::parse_document(&html);
    assert!(select(&doc, "article script").is_empty());
    for element in select(&doc, "*") {
        for (name, value) in element.value().attrs() {
            assert!(!value.contains("javascript:"), "{name}={value}");
            assert!(!name.starts_with("on"), "{name}");
        }
    }
    assert_eq!(
        select(&doc, ".body a").len(),
        2,
        "the links stay, without their targets"
    );
    assert_eq!(
        text_of(&doc, "h1").unwrap(),
        "Unsafe <b>title</b>",
        "the title is text, escaped"
    );
    assert_eq!(json_ld(&doc)["headline"], "Unsafe <b>title</b>");
}

/// The site's reset link in a mail.
fn site_reset_token(mail: &str) -> String {
    let start = mail
        .find("/reset-password/")
        .expect("a reset link to the site's page")
        + "/reset-password/".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_pages_and_the_mail() {
    let sink = crate::smtp::SmtpSink::start();
    let app = TestApp::spawn_with(&[
        ("PAYWALL_SITE", "on"),
        ("PAYWALL_SMTP_URL", &sink.url),
        ("PAYWALL_MAIL_FROM", "Newsroom <news@test.example>"),
    ])
    .await;
    let (_, old_session) = app.reader("forgetful@test.example").await;
    let mut jar = Jar::default();
    let (_, _, html) = get(&app, "/signin", &mut jar, None).await;
    let doc = Html::parse_document(&html);
    assert!(
        select(&doc, r#"a[href="/reset-password"]"#).len() == 1,
        "the sign-in page offers a reset"
    );
    let (status, _, html) = get(&app, "/reset-password", &mut jar, None).await;
    assert_eq!(status, 200);
    let token = csrf(&Html::parse_document(&html));
    let (status, _, html) = post_form(
        &app,
        "/reset-password",
        &mut jar,
        &[("csrf", &token), ("email", "forgetful@test.example")],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, 200);
    assert!(text_of(&Html::parse_document(&html), ".notice")
        .unwrap()
        .contains("on its way"));
    let mail = sink.wait_for(0);
    assert!(
        mail.contains(&format!("{}/reset-password/", app.base)),
        "{mail}"
    );
    let link = site_reset_token(&mail);
    let path = format!("/reset-password/{link}");
    let (status, _, html) = get(&app, &path, &mut jar, None).await;
    assert_eq!(status, 200);
    let doc = Html::parse_document(&html);
    let form_token = csrf(&doc);
    assert_eq!(select(&doc, &format!(r#"form[action="{path}"]"#)).len(), 1);
    let (status, _, html) = post_form(
        &app,
        &path,
        &mut jar,
        &[("csrf", &form_token), ("new_password", "short")],
        None,
    )
    .await;
    assert_eq!(status, 422);
    assert!(text_of(&Html::parse_document(&html), ".error").is_some());
    let (status, _, _) = post_form(
        &app,
        &path,
        &mut jar,
        &[
            ("csrf", &form_token),
            ("new_password", "a-brand-new-passphrase-Fauré-1845"),
        ],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, 200);
    assert_problem(
        app.get("/v1/me", Some(&old_session)).await,
        401,
        "invalid_token",
    )
    .await;
    app.login(
        "forgetful@test.example",
        "a-brand-new-passphrase-Fauré-1845",
    )
    .await;
    // Spent: the link now says so, and offers a new one.
    let (status, _, html) = get(&app, &path, &mut jar, None).await;
    assert_eq!(status, 401);
    assert!(text_of(&Html::parse_document(&html), ".error")
        .unwrap()
        .contains("not valid"));
    let (status, _, _) = get(&app, "/reset-password/garbage", &mut jar, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_subscribe_page_leads_to_the_plans_checkout() {
    let (app, admin) = site().await;
    app.post(
        "/v1/admin/plans",
        Some(&admin),
        json!({"id": "digital", "name": "Digital", "seats": 1,
        "checkout_url": "https://buy.stripe.com/test_digital"}),
    )
    .await;
    app.post(
        "/v1/admin/plans",
        Some(&admin),
        json!({"id": "famille", "name": "Famille", "seats": 4,
        "checkout_url": "https://buy.stripe.com/test_famille"}),
    )
    .await;
    let mut anonymous = Jar::default();
    let (status, headers, html) = get(&app, "/subscribe", &mut anonymous, None).await;
    assert_eq!(status, 200);
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("form-action 'self' https://buy.stripe.com"));
    let doc = Html::parse_document(&html);
    let names: Vec<String> = select(&doc, ".plan h2")
        .iter()
        .map(|h| h.text().collect())
        .collect();
    assert_eq!(names, ["Digital", "Famille"]);
    assert!(text_of(&doc, ".plan")
        .unwrap()
        .contains("one device at a time"));
    assert_eq!(
        select(&doc, r#".plan a[href="/signin?next=/subscribe"]"#).len(),
        2
    );
    let (id, _) = app.reader("buyer@test.example").await;
    let mut jar = sign_in(&app, "buyer@test.example", PASSWORD).await;
    let (_, _, html) = get(&app, "/subscribe", &mut jar, None).await;
    let token = csrf(&Html::parse_document(&html));
    let (status, headers, _) = post_form(
        &app,
        "/subscribe",
        &mut jar,
        &[("csrf", &token), ("plan", "famille")],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, 303);
    let to = url::Url::parse(headers[LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/test_famille");
    let query: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(query["client_reference_id"], id);
    assert_eq!(query["prefilled_email"], "buyer@test.example");
    let (status, _, _) = post_form(
        &app,
        "/subscribe",
        &mut jar,
        &[("csrf", &token), ("plan", "nope")],
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_account_page_shows_the_subscription_devices_and_signs_out_everywhere() {
    let app = TestApp::spawn_with(&[
        ("PAYWALL_SITE", "on"),
        (
            "PAYWALL_STRIPE_PORTAL_URL",
            "https://billing.stripe.com/p/login/test_x",
        ),
    ])
    .await;
    let mut anonymous = Jar::default();
    let (status, headers, _) = get(&app, "/account", &mut anonymous, None).await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/signin?next=/account");
    let (id, other_device) = app.reader("owner@test.example").await;
    app.store()
        .await
        .set_subscription(&id, "digital", now() - 60, Some(1_900_000_000))
        .await
        .unwrap();
    let mut jar = sign_in(&app, "owner@test.example", PASSWORD).await;
    let (status, _, html) = get(&app, "/account", &mut jar, None).await;
    assert_eq!(status, 200);
    let doc = Html::parse_document(&html);
    let text: String = doc.root_element().text().collect();
    assert!(text.contains("owner@test.example"));
    assert!(
        text.contains("digital: reads until 17 March 2030"),
        "{text}"
    );
    assert_eq!(
        select(&doc, ".sessions li").len(),
        2,
        "the API's session and this one"
    );
    assert!(text.contains("(this device)"));
    let billing = select(
        &doc,
        r#"a[href^="https://billing.stripe.com/p/login/test_x"]"#,
    );
    assert_eq!(billing.len(), 1);
    let token = csrf(&doc);
    let (status, _, _) = post_form(
        &app,
        "/account/sessions",
        &mut jar,
        &[("csrf", &token)],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!jar.0.contains_key("paywall_session"));
    assert_problem(
        app.get("/v1/me", Some(&other_device)).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn a_subscriber_gifts_an_article_and_the_link_opens_it_in_another_browser() {
    let (app, _) = site().await;
    let (id, _) = app.reader("giver@test.example").await;
    app.store()
        .await
        .set_subscription(&id, "digital", now() - 60, None)
        .await
        .unwrap();
    let mut jar = sign_in(&app, "giver@test.example", PASSWORD).await;
    let (_, _, html) = get(&app, "/articles/subscribers-one", &mut jar, None).await;
    let doc = Html::parse_document(&html);
    let forms = select(&doc, r#"form[action="/articles/subscribers-one/gift"]"#);
    assert_eq!(forms.len(), 1, "a gift button");
    let token = csrf(&doc);
    let (status, _, html) = post_form(
        &app,
        "/articles/subscribers-one/gift",
        &mut jar,
        &[("csrf", &token)],
        Some(&app.base),
    )
    .await;
    assert_eq!(status, 201);
    let doc = Html::parse_document(&html);
    let link = select(&doc, "#gift-link")[0]
        .value()
        .attr("value")
        .unwrap()
        .to_string();
    assert!(
        link.starts_with(&format!("{}/articles/subscribers-one?gift=", app.base)),
        "{link}"
    );
    // A fresh browser, signed out, reads it in full.
    let path = link.strip_prefix(&app.base).unwrap();
    let mut fresh = Jar::default();
    let (_, _, html) = get(&app, path, &mut fresh, None).await;
    let doc = Html::parse_document(&html);
    assert!(select(&doc, ".paywall").is_empty());
    assert!(html.contains(GATED));
    // Nobody without a subscription sees the button, and the account lists the gift.
    let (_, _, html) = get(&app, "/articles/subscribers-one", &mut Jar::default(), None).await;
    assert!(select(&Html::parse_document(&html), "form.gift").is_empty());
    let (_, _, html) = get(&app, "/account", &mut jar, None).await;
    let doc = Html::parse_document(&html);
    assert_eq!(
        select(&doc, r#".gifts a[href="/articles/subscribers-one"]"#).len(),
        1
    );
}

#[tokio::test]
async fn crawlers_are_known_by_their_published_ranges_never_by_their_user_agent() {
    let dir = tempfile::tempdir().unwrap();
    let ranges = dir.path().join("crawlers.json");
    std::fs::write(
        &ranges,
        r#"{"creationTime": "2026-12-01T00:00:00", "prefixes": [{"ipv4Prefix": "10.20.0.0/16"}, {"ipv6Prefix": "2001:db8:1::/48"}]}"#,
    )
    .unwrap();
    let app = TestApp::spawn_with(&[
        ("PAYWALL_SITE", "on"),
        ("PAYWALL_CRAWLER_RANGES", ranges.to_str().unwrap()),
        ("PAYWALL_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let admin = app.admin_token().await;
    app.article(
        &admin,
        json!({"title": "Gated", "slug": "gated", "section": "s", "access": "subscribers",
        "status": "published", "body": body_with_gated_end()}),
    )
    .await;
    let fetch = |forwarded: &'static str, agent: &'static str, path: &'static str| {
        let request = app
            .client
            .get(app.url(path))
            .header("x-forwarded-for", forwarded)
            .header("user-agent", agent);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    // From a published range: the whole text, with the subscribers' part marked.
    let html = fetch("10.20.3.4", googlebot, "/articles/gated").await;
    let doc = Html::parse_document(&html);
    assert!(select(&doc, ".paywall").is_empty());
    assert!(text_of(&doc, ".gated").unwrap().contains(GATED));
    let ld = json_ld(&doc);
    assert_eq!(ld["isAccessibleForFree"], false);
    assert_eq!(ld["hasPart"]["cssSelector"], ".gated");
    let api: Value =
        serde_json::from_str(&fetch("2001:db8:1::7", "any", "/v1/articles/gated").await).unwrap();
    assert_eq!(api["truncated"], false);
    // The same user agent from elsewhere is a reader like any other.
    let html = fetch("192.0.2.10", googlebot, "/articles/gated").await;
    assert!(!html.contains(GATED));
    let api: Value =
        serde_json::from_str(&fetch("192.0.2.10", googlebot, "/v1/articles/gated").await).unwrap();
    assert_eq!(api["truncated"], true);
}

#[test]
fn a_crawler_ranges_file_that_does_not_parse_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"prefixes": [{"ipv4Prefix": "not-a-range"}]}"#).unwrap();
    let output = paywall_command(dir.path())
        .env("PAYWALL_CRAWLER_RANGES", &bad)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PAYWALL_CRAWLER_RANGES") && stderr.contains("not-a-range"),
        "{stderr}"
    );
    let missing = paywall_command(dir.path())
        .env("PAYWALL_CRAWLER_RANGES", dir.path().join("nope.json"))
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

#[tokio::test]
async fn a_signed_out_page_made_once_follows_every_edit() {
    let (app, admin) = site().await;
    let (_, _, first) = get(&app, "/articles/subscribers-one", &mut Jar::default(), None).await;
    let (_, headers, again) =
        get(&app, "/articles/subscribers-one", &mut Jar::default(), None).await;
    assert_eq!(first, again, "the same page for every signed-out reader");
    assert!(
        headers.get(SET_COOKIE).is_none(),
        "a reader who only reads gets no cookie"
    );
    let patched = app
        .request(
            reqwest::Method::PATCH,
            "/v1/admin/articles/subscribers-one",
            Some(&admin),
            Some(json!({"title": "A corrected title"})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let (_, _, edited) = get(&app, "/articles/subscribers-one", &mut Jar::default(), None).await;
    assert_eq!(
        text_of(&Html::parse_document(&edited), "h1").unwrap(),
        "A corrected title"
    );
    let (_, _, french) = get(
        &app,
        "/articles/subscribers-one",
        &mut Jar::default(),
        Some("fr"),
    )
    .await;
    assert!(text_of(&Html::parse_document(&french), ".paywall .message")
        .unwrap()
        .starts_with("Il vous reste"));
    // A subscriber's page is the subscriber's own, never the signed-out one.
    let (id, _) = app.reader("cache-subscriber@test.example").await;
    app.store()
        .await
        .set_subscription(&id, "digital", now() - 60, None)
        .await
        .unwrap();
    let mut jar = sign_in(&app, "cache-subscriber@test.example", PASSWORD).await;
    let (_, _, own) = get(&app, "/articles/subscribers-one", &mut jar, None).await;
    assert!(own.contains(GATED));
    let (_, _, signed_out) =
        get(&app, "/articles/subscribers-one", &mut Jar::default(), None).await;
    assert!(!signed_out.contains(GATED));
}

#[tokio::test]
async fn pages_answer_head_as_get_without_a_body() {
    let (app, _) = site().await;
    for path in ["/", "/articles/free-one", "/signin", "/assets/site.css"] {
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
        assert!(head.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/"));
        assert!(head.text().await.unwrap().is_empty(), "{path}");
    }
}
