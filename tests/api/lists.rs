//! Lists: newest first, paginated without repeats, never a body; drafts and future
//! articles hidden from readers.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::*;
use reqwest::Method;

async fn collect(app: &TestApp, path: &str, token: Option<&str>, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let response = app.get(&url, token).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        let batch = page["items"].as_array().unwrap();
        assert!(batch.len() <= limit);
        items.extend(batch.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
    panic!("pagination never ended");
}

#[tokio::test]
async fn public_lists_paginate_newest_first_without_bodies() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let base = now() - 100_000;
    // Several share a publication second, so the id must break ties.
    for i in 0..23 {
        let at = rfc3339(base + (i / 3) * 60);
        let section = if i % 2 == 0 { "even" } else { "odd" };
        app.article(
            &admin,
            json!({"title": format!("Story {i}"), "slug": format!("story-{i}"), "body": long_body(3),
                   "section": section, "access": "subscribers", "status": "published", "published_at": at}),
        )
        .await;
    }
    app.article(&admin, json!({"title": "Draft", "slug": "draft", "body": "x y", "section": "even", "access": "free"})).await;
    app.article(
        &admin,
        json!({"title": "Future", "slug": "future", "body": "x y", "section": "even", "access": "free",
               "status": "published", "published_at": "2999-01-01T00:00:00Z"}),
    )
    .await;

    for limit in [1, 7, 10, 100] {
        let items = collect(&app, "/v1/articles", None, limit).await;
        assert_eq!(items.len(), 23, "limit {limit}");
        let slugs: HashSet<_> = items
            .iter()
            .map(|i| i["slug"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(slugs.len(), 23, "no repeats at limit {limit}");
        assert!(!slugs.contains("draft") && !slugs.contains("future"));
        let times: Vec<&str> = items
            .iter()
            .map(|i| i["published_at"].as_str().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
        for item in &items {
            assert!(item.get("body").is_none(), "a list never carries a body");
            for field in [
                "slug",
                "title",
                "standfirst",
                "section",
                "author",
                "access",
                "published_at",
                "updated_at",
                "word_count",
                "reading_time_minutes",
            ] {
                assert!(item.get(field).is_some(), "{field}");
            }
            assert!(!item.to_string().contains("Paragraphe 2"));
        }
    }
    let default_page: Value = app.get("/v1/articles", None).await.json().await.unwrap();
    assert_eq!(default_page["items"].as_array().unwrap().len(), 20);

    let even = collect(&app, "/v1/articles?section=even", None, 5).await;
    assert_eq!(even.len(), 12);
    assert!(even.iter().all(|i| i["section"] == "even"));

    // Drafts and future articles: 404 to readers, even to the admin on the public route.
    for slug in ["draft", "future", "never-existed"] {
        assert_problem(
            app.get(&format!("/v1/articles/{slug}"), None).await,
            404,
            "not_found",
        )
        .await;
        assert_problem(
            app.get(&format!("/v1/articles/{slug}"), Some(&admin)).await,
            404,
            "not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn the_editors_list_includes_drafts_and_filters_by_status() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for i in 0..5 {
        let status = if i < 2 { "draft" } else { "published" };
        app.article(&admin, json!({"title": format!("A{i}"), "body": "one two", "section": "s", "access": "free", "status": status})).await;
    }
    let all = collect(&app, "/v1/admin/articles", Some(&admin), 2).await;
    assert_eq!(all.len(), 5);
    assert!(all
        .iter()
        .all(|i| i.get("body").is_none() && i["status"].is_string()));
    assert_eq!(
        collect(&app, "/v1/admin/articles?status=draft", Some(&admin), 10)
            .await
            .len(),
        2
    );
    assert_eq!(
        collect(
            &app,
            "/v1/admin/articles?status=published",
            Some(&admin),
            10
        )
        .await
        .len(),
        3
    );
    assert_problem(
        app.get("/v1/admin/articles?status=archived", Some(&admin))
            .await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn bad_list_parameters_are_bad_requests() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=-3",
        "limit=ten",
        "cursor=garbage",
        "cursor=MTIzfG5vdC1hLXV1aWQ",
        "status=",
        "status=archived",
    ] {
        // `status` filters editors' lists only; a blank choice is not "any".
        let public = (!query.starts_with("status")).then_some(("/v1/articles", None));
        for (list, token) in public
            .into_iter()
            .chain([("/v1/admin/articles", Some(admin.as_str()))])
        {
            assert_problem(
                app.get(&format!("{list}?{query}"), token).await,
                400,
                "invalid_request",
            )
            .await;
        }
    }
}

/// Slugs of the first page of the public list (of `section`, when given).
async fn first_page(app: &TestApp, section: Option<&str>) -> Vec<String> {
    let path = match section {
        Some(section) => format!("/v1/articles?limit=20&section={section}"),
        None => "/v1/articles?limit=20".to_string(),
    };
    let response = app.get(&path, None).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["slug"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn kept_list_pages_follow_every_edit_and_every_scheduled_time() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for i in 0..3 {
        app.article(
            &admin,
            json!({"title": format!("Story {i}"), "slug": format!("story-{i}"), "body": long_body(2),
                   "section": "news", "access": "subscribers", "status": "published",
                   "published_at": rfc3339(now() - 600 + i * 60)}),
        )
        .await;
    }
    // Due in three seconds: not listed yet, and listed as soon as its time comes, by
    // the same instance that kept the page without it.
    let due = now() + 3;
    app.article(
        &admin,
        json!({"title": "Scheduled", "slug": "scheduled", "body": long_body(2), "section": "news",
               "access": "subscribers", "status": "published", "published_at": rfc3339(due)}),
    )
    .await;
    let expected = ["story-2", "story-1", "story-0"];
    for _ in 0..3 {
        assert_eq!(first_page(&app, None).await, expected);
        assert_eq!(first_page(&app, Some("news")).await, expected);
    }
    // The pages are kept now: an edit shows at the very next list, on every page it is on.
    let patched = app
        .request(
            Method::PATCH,
            "/v1/admin/articles/story-1",
            Some(&admin),
            Some(json!({"status": "draft"})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(first_page(&app, None).await, ["story-2", "story-0"]);
    assert_eq!(first_page(&app, Some("news")).await, ["story-2", "story-0"]);
    let response = app.get("/v1/articles?limit=20", None).await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["items"][0]["title"], "Story 2");
    assert!(page["items"][0].get("body").is_none());

    while now() < due + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        first_page(&app, None).await,
        ["scheduled", "story-2", "story-0"]
    );
    assert_eq!(
        first_page(&app, Some("news")).await,
        ["scheduled", "story-2", "story-0"]
    );
}
