//! The editors' article routes: who may use them, what they store, what they refuse.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

fn valid() -> Value {
    json!({"title": "Budget 2027 : où va l’argent ?", "body": long_body(6), "section": "politics", "access": "subscribers"})
}

#[tokio::test]
async fn only_editors_and_admins_manage_articles() {
    let app = TestApp::spawn().await;
    let (_, reader) = app.reader("reader@test.example").await;
    let (editor_id, editor) = app.reader("editor@test.example").await;
    app.store()
        .await
        .set_role(&editor_id, "editor", now())
        .await
        .unwrap();

    assert_problem(
        app.post("/v1/admin/articles", None, valid()).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.post("/v1/admin/articles", Some(&reader), valid()).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/v1/admin/articles", Some(&reader)).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/v1/admin/articles/x", Some(&reader)).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.request(Method::DELETE, "/v1/admin/articles/x", Some(&reader), None)
            .await,
        403,
        "forbidden",
    )
    .await;

    let created = app.article(&editor, valid()).await;
    assert_eq!(created["slug"], "budget-2027-ou-va-l-argent");
    assert_eq!(created["status"], "draft");
    assert!(created["published_at"].is_null());
    assert_eq!(created["teaser_ratio"], 0.4);
    assert_eq!(
        app.get(
            "/v1/admin/articles/budget-2027-ou-va-l-argent",
            Some(&editor)
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn create_get_patch_delete() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut body = valid();
    body["slug"] = json!("budget");
    body["standfirst"] = json!("Ce qu’il faut savoir.");
    body["author"] = json!("Françoise Ndiaye");
    body["teaser_ratio"] = json!(0.5);
    body["body"] = json!("Line one  \r\nline two\r\n\r\n\r\n\r\nSecond block.\r\n\r\n");
    let response = app.post("/v1/admin/articles", Some(&admin), body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/v1/admin/articles/budget");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["body"], "Line one\nline two\n\nSecond block.");
    assert_eq!(created["teaser_ratio"], 0.5);
    assert_eq!(created["standfirst"], "Ce qu’il faut savoir.");
    assert_eq!(created["word_count"], 6);
    assert!(created["teaser_chars"].is_number() && created["percent_left"].is_number());

    let got: Value = app
        .get("/v1/admin/articles/budget", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);

    // A patch changes what it names, and the teaser is cut again.
    let patch = json!({"title": "Budget, revised", "access": "free", "status": "published", "author": null,
                       "body": "Only one block now, with several words in it."});
    let patched: Value = app
        .request(
            Method::PATCH,
            "/v1/admin/articles/budget",
            Some(&admin),
            Some(patch),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["title"], "Budget, revised");
    assert_eq!(patched["access"], "free");
    assert_eq!(patched["status"], "published");
    assert!(patched["author"].is_null());
    assert!(patched["published_at"].is_string());
    assert_eq!(patched["standfirst"], "Ce qu’il faut savoir.");
    assert_eq!(patched["teaser_ratio"], 0.5);
    assert_ne!(patched["teaser_chars"], created["teaser_chars"]);
    let public: Value = app
        .get("/v1/articles/budget", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        public["body"],
        "Only one block now, with several words in it."
    );

    // Renaming the slug moves the article.
    let moved = app
        .request(
            Method::PATCH,
            "/v1/admin/articles/budget",
            Some(&admin),
            Some(json!({"slug": "budget-2027"})),
        )
        .await;
    assert_eq!(moved.status(), 200);
    assert_problem(
        app.get("/v1/admin/articles/budget", Some(&admin)).await,
        404,
        "not_found",
    )
    .await;

    let deleted = app
        .request(
            Method::DELETE,
            "/v1/admin/articles/budget-2027",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    assert_problem(
        app.request(
            Method::DELETE,
            "/v1/admin/articles/budget-2027",
            Some(&admin),
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/articles/budget-2027", None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn automatic_slugs_are_made_unique() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = app.article(&admin, valid()).await;
    let second = app.article(&admin, valid()).await;
    assert_eq!(first["slug"], "budget-2027-ou-va-l-argent");
    assert_eq!(second["slug"], "budget-2027-ou-va-l-argent-2");
    let mut only_symbols = valid();
    only_symbols["title"] = json!("¡¿!?");
    assert_eq!(app.article(&admin, only_symbols).await["slug"], "article");
}

#[tokio::test]
async fn bad_article_input_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let with = |key: &str, value: Value| {
        let mut body = valid();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = valid();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases = [
        (without("title"), "title"),
        (without("body"), "body"),
        (without("section"), "section"),
        (without("access"), "access"),
        (with("title", json!("   ")), "title"),
        (with("title", json!("t".repeat(301))), "title"),
        (with("body", json!("")), "body"),
        (with("body", json!(" \r\n \n\t\n")), "body"),
        (with("body", json!("<!-- paywall -->")), "body"),
        (with("access", json!("premium")), "access"),
        (with("status", json!("archived")), "status"),
        (with("slug", json!("Not A Slug")), "slug"),
        (with("slug", json!("")), "slug"),
        (with("teaser_ratio", json!(0)), "teaser_ratio"),
        (with("teaser_ratio", json!(1)), "teaser_ratio"),
        (with("teaser_ratio", json!(-0.5)), "teaser_ratio"),
        (with("teaser_ratio", json!("half")), "teaser_ratio"),
        (with("published_at", json!("tomorrow")), "published_at"),
        (with("id", json!("0193")), "id"),
        (with("teaser_chars", json!(3)), "teaser_chars"),
        (with("title", json!(null)), "title"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(
            app.post("/v1/admin/articles", Some(&admin), body.clone())
                .await,
            422,
            "validation_failed",
        )
        .await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }
    let list: Value = app
        .get("/v1/admin/articles", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing half-written"
    );

    app.article(&admin, with("slug", json!("taken"))).await;
    assert_problem(
        app.post(
            "/v1/admin/articles",
            Some(&admin),
            with("slug", json!("taken")),
        )
        .await,
        409,
        "slug_taken",
    )
    .await;
    app.article(&admin, with("slug", json!("other"))).await;
    let clash = app
        .request(
            Method::PATCH,
            "/v1/admin/articles/other",
            Some(&admin),
            Some(json!({"slug": "taken"})),
        )
        .await;
    assert_problem(clash, 409, "slug_taken").await;
    for (patch, field) in [
        (json!({"body": null}), "body"),
        (json!({"slug": null}), "slug"),
        (json!({"access": "gold"}), "access"),
        (json!({"nope": 1}), "nope"),
    ] {
        let response = app
            .request(
                Method::PATCH,
                "/v1/admin/articles/other",
                Some(&admin),
                Some(patch.clone()),
            )
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{patch}");
    }
    let unchanged: Value = app
        .get("/v1/admin/articles/other", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["access"], "subscribers");
    let missing = app
        .request(
            Method::PATCH,
            "/v1/admin/articles/missing",
            Some(&admin),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_problem(missing, 404, "not_found").await;
    assert_problem(
        app.get("/v1/admin/articles/missing", Some(&admin)).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn article_bodies_may_be_up_to_a_mebibyte() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // 200 KiB: over the 16 KiB limit of other routes, within the article limit.
    let big = long_body(2_500);
    assert!(big.len() > 200_000);
    let created = app
        .article(
            &admin,
            json!({"title": "Long read", "body": big, "section": "s", "access": "free"}),
        )
        .await;
    assert!(created["total_chars"].as_i64().unwrap() > 150_000);
    let huge = "a ".repeat(600 * 1024);
    let response = app
        .post(
            "/v1/admin/articles",
            Some(&admin),
            json!({"title": "Too long", "body": huge, "section": "s", "access": "free"}),
        )
        .await;
    assert_problem(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_body_of_raw_html_is_refused_with_what_to_send_instead() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let html = "<p>One paragraph of a CMS.</p>\n\n<p>Another, <strong>late.</strong></p>";
    let response = app
        .post(
            "/v1/admin/articles",
            Some(&admin),
            serde_json::json!({"title": "From a CMS", "body": html, "section": "s", "access": "subscribers", "status": "published"}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("Markdown") && message.contains("<p>"),
        "{message}"
    );
    // Nothing was written.
    let list: serde_json::Value = app
        .get("/v1/admin/articles", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // Markdown with a `<` in prose and HTML in code is a body like any other.
    app.article(
        &admin,
        serde_json::json!({"title": "Markdown", "body": "If a < b, write `<b>`.\n\nTwo.", "section": "s", "access": "free"}),
    )
    .await;
}
