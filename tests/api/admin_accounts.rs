//! The admin account API: every route, filter and bad input; the next-request effect
//! of each change; the last admin; the audit log.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

async fn create(app: &TestApp, admin: &str, body: Value) -> Value {
    let response = app.post("/v1/admin/accounts", Some(admin), body).await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{answer}");
    answer
}

async fn patch(app: &TestApp, admin: &str, id: &str, body: Value) -> reqwest::Response {
    app.request(
        Method::PATCH,
        &format!("/v1/admin/accounts/{id}"),
        Some(admin),
        Some(body),
    )
    .await
}

async fn subscribers_article(app: &TestApp, admin: &str) {
    app.article(
        admin,
        json!({"title": "Gated", "slug": "gated", "body": long_body(4), "section": "s",
               "access": "subscribers", "status": "published"}),
    )
    .await;
}

async fn truncated(app: &TestApp, token: &str) -> bool {
    let view: Value = app
        .get("/v1/articles/gated", Some(token))
        .await
        .json()
        .await
        .unwrap();
    view["truncated"].as_bool().unwrap()
}

#[tokio::test]
async fn only_admins_reach_the_account_routes() {
    let app = TestApp::spawn().await;
    let (_, reader) = app.reader("reader@test.example").await;
    let (editor_id, editor) = app.reader("editor@test.example").await;
    app.store()
        .await
        .set_role(&editor_id, "editor", now())
        .await
        .unwrap();
    let id = "0193b3a2-0000-7000-8000-000000000000";
    let routes = [
        (Method::GET, "/v1/admin/accounts".to_string()),
        (Method::POST, "/v1/admin/accounts".to_string()),
        (Method::GET, format!("/v1/admin/accounts/{id}")),
        (Method::PATCH, format!("/v1/admin/accounts/{id}")),
        (Method::DELETE, format!("/v1/admin/accounts/{id}")),
        (
            Method::POST,
            format!("/v1/admin/accounts/{id}/password-reset"),
        ),
        (Method::PUT, format!("/v1/admin/accounts/{id}/subscription")),
        (
            Method::DELETE,
            format!("/v1/admin/accounts/{id}/subscription"),
        ),
        (Method::DELETE, format!("/v1/admin/accounts/{id}/sessions")),
        (Method::GET, "/v1/admin/audit".to_string()),
    ];
    for (method, path) in routes {
        let body = Some(json!({"email": "x@test.example", "plan": "digital"}));
        assert_problem(
            app.request(method.clone(), &path, None, body.clone()).await,
            401,
            "unauthorized",
        )
        .await;
        assert_problem(
            app.request(method.clone(), &path, Some(&reader), body.clone())
                .await,
            403,
            "forbidden",
        )
        .await;
        assert_problem(
            app.request(method.clone(), &path, Some(&editor), body)
                .await,
            403,
            "forbidden",
        )
        .await;
    }
}

// ASVS 5.0 V6.4.6: an admin starts a reset but never chooses a reader's password.
#[tokio::test]
async fn create_with_and_without_a_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let with = create(
        &app,
        &admin,
        json!({"email": "Ada@Test.example", "password": PASSWORD, "display_name": "Ada", "role": "editor",
               "subscription": {"plan": "digital", "expires_at": "2099-01-01T00:00:00Z"}}),
    )
    .await;
    assert_eq!(with["email"], "ada@test.example");
    assert_eq!(with["role"], "editor");
    assert_eq!(with["subscription"]["plan"], "digital");
    assert_eq!(with["subscription"]["expires_at"], "2099-01-01T00:00:00Z");
    assert_eq!(with["subscription"]["active"], true);
    assert!(with.get("password_reset").is_none());
    app.login("ada@test.example", PASSWORD).await;

    let without = create(&app, &admin, json!({"email": "bob@test.example"})).await;
    assert_eq!(without["role"], "reader");
    assert!(without["subscription"].is_null());
    let reset = &without["password_reset"];
    let token = reset["token"].as_str().unwrap();
    assert!(token.len() >= 22, "at least 128 bits");
    assert!(reset["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/reset-password?token={token}")));
    assert!(reset["expires_at"].is_string());
    // No password yet: nothing signs in.
    assert_problem(
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": "bob@test.example", "password": PASSWORD}),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    let done = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"token": token, "new_password": "bob-chooses-Poulenc-1899"}),
        )
        .await;
    assert_eq!(done.status(), 204);
    app.login("bob@test.example", "bob-chooses-Poulenc-1899")
        .await;
}

#[tokio::test]
async fn create_refuses_bad_input() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let cases = [
        (json!({}), "email"),
        (json!({"email": "nope"}), "email"),
        (json!({"email": "a@test.example", "role": "owner"}), "role"),
        (
            json!({"email": "a@test.example", "status": "active"}),
            "status",
        ),
        (
            json!({"email": "a@test.example", "password": "password1"}),
            "password",
        ),
        (
            json!({"email": "a@test.example", "subscription": {"plan": ""}}),
            "subscription.plan",
        ),
        (
            json!({"email": "a@test.example", "subscription": {"plan": "p", "expires_at": "soon"}}),
            "subscription.expires_at",
        ),
        (
            json!({"email": "a@test.example", "subscription": {"plan": "p", "price": 3}}),
            "subscription.price",
        ),
        (json!({"email": "a@test.example", "id": "x"}), "id"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(
            app.post("/v1/admin/accounts", Some(&admin), body.clone())
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
    assert!(app
        .store()
        .await
        .account_by_email("a@test.example")
        .await
        .unwrap()
        .is_none());
    let taken = app
        .post(
            "/v1/admin/accounts",
            Some(&admin),
            json!({"email": ADMIN_EMAIL}),
        )
        .await;
    assert_problem(taken, 409, "email_taken").await;
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for id in [
        "0193b3a2-0000-7000-8000-000000000000",
        "not-a-uuid",
        "1",
        "%20",
    ] {
        for (method, suffix, body) in [
            (Method::GET, "", None),
            (Method::PATCH, "", Some(json!({"display_name": "x"}))),
            (Method::DELETE, "", None),
            (Method::POST, "/password-reset", None),
            (
                Method::PUT,
                "/subscription",
                Some(json!({"plan": "digital"})),
            ),
            (Method::DELETE, "/subscription", None),
            (Method::DELETE, "/sessions", None),
        ] {
            let path = format!("/v1/admin/accounts/{id}{suffix}");
            assert_problem(
                app.request(method, &path, Some(&admin), body).await,
                404,
                "not_found",
            )
            .await;
        }
    }
}

#[tokio::test]
async fn list_filters_and_paginates_stably() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let store = app.store().await;
    for i in 0..12 {
        let (id, _) = app.reader(&format!("reader{i:02}@test.example")).await;
        if i % 3 == 0 {
            store
                .set_subscription(&id, "digital", now(), None)
                .await
                .unwrap();
        }
        if i == 4 {
            store
                .set_subscription(&id, "digital", now() - 100, Some(now() - 10))
                .await
                .unwrap();
        }
        if i == 5 {
            store.set_status(&id, "suspended", now()).await.unwrap();
        }
    }
    create(
        &app,
        &admin,
        json!({"email": "named@test.example", "display_name": "Zoé Lefèvre", "role": "editor"}),
    )
    .await;

    let page = |query: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let response = app
                .get(&format!("/v1/admin/accounts?{query}"), Some(&admin))
                .await;
            assert_eq!(response.status(), 200, "{query}");
            let page: Value = response.json().await.unwrap();
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["email"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page("q=READER0").await.len(), 10);
    assert_eq!(page("q=lefèvre").await, ["named@test.example"]);
    assert_eq!(page("q=100%25").await.len(), 0, "% is matched literally");
    assert_eq!(page("role=editor").await, ["named@test.example"]);
    assert_eq!(page("role=admin").await, [ADMIN_EMAIL]);
    assert_eq!(page("status=suspended").await, ["reader05@test.example"]);
    let subscribed = page("subscribed=true").await;
    assert_eq!(subscribed.len(), 4);
    assert!(
        !subscribed.contains(&"reader04@test.example".to_string()),
        "expired is not subscribed"
    );
    assert_eq!(page("subscribed=false&q=reader").await.len(), 8);
    for bad in [
        "role=owner",
        "status=gone",
        "subscribed=yes",
        "role=",
        "status=",
        "subscribed=",
        "limit=0",
        "cursor=zzz",
    ] {
        assert_problem(
            app.get(&format!("/v1/admin/accounts?{bad}"), Some(&admin))
                .await,
            400,
            "invalid_request",
        )
        .await;
    }

    // Walk the list five at a time while new accounts arrive: nothing repeats and
    // nothing that was there before is skipped.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/accounts?limit=5&cursor={c}"),
            None => "/v1/admin/accounts?limit=5".to_string(),
        };
        let page: Value = app.get(&path, Some(&admin)).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            assert!(item.get("password_hash").is_none());
            seen.push(item["email"].as_str().unwrap().to_string());
        }
        if added < 3 {
            app.reader(&format!("late{added}@test.example")).await;
            added += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no repeats");
    assert_eq!(
        seen.len(),
        14,
        "the 14 accounts that were there at the start"
    );
    assert!(seen.iter().all(|e| !e.starts_with("late")));
}

// ASVS 5.0 V7.4.2 (suspension and deletion end sessions), V7.4.5 (admins end a
// reader's sessions), V8.2.1 (role changes apply at once).
#[tokio::test]
async fn admin_changes_apply_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    subscribers_article(&app, &admin).await;
    let (id, token) = app.reader("target@test.example").await;

    // Subscription granted, then ended.
    assert!(truncated(&app, &token).await);
    let put = app
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{id}/subscription"),
            Some(&admin),
            Some(json!({"plan": "digital", "expires_at": null})),
        )
        .await;
    assert_eq!(put.status(), 200);
    let account: Value = put.json().await.unwrap();
    assert_eq!(account["subscription"]["active"], true);
    assert!(account["subscription"]["expires_at"].is_null());
    assert!(!truncated(&app, &token).await);
    let ended: Value = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/accounts/{id}/subscription"),
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ended["subscription"]["active"], false);
    let view: Value = app
        .get("/v1/articles/gated", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["paywall"]["reason"], "subscription_expired");
    let bad = app
        .request(
            Method::PUT,
            &format!("/v1/admin/accounts/{id}/subscription"),
            Some(&admin),
            Some(json!({"plan": "digital", "expires_at": "never"})),
        )
        .await;
    assert_problem(bad, 422, "validation_failed").await;

    // Role: promoted to editor, then demoted.
    let article =
        json!({"title": "By the new editor", "body": "x y", "section": "s", "access": "free"});
    assert_problem(
        app.post("/v1/admin/articles", Some(&token), article.clone())
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        patch(&app, &admin, &id, json!({"role": "editor"}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post("/v1/admin/articles", Some(&token), article.clone())
            .await
            .status(),
        201
    );
    assert!(!truncated(&app, &token).await, "editors read everything");
    assert_eq!(
        patch(&app, &admin, &id, json!({"role": "reader"}))
            .await
            .status(),
        200
    );
    assert_problem(
        app.post("/v1/admin/articles", Some(&token), article).await,
        403,
        "forbidden",
    )
    .await;

    // Sessions revoked.
    let response = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/accounts/{id}/sessions"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_problem(app.get("/v1/me", Some(&token)).await, 401, "invalid_token").await;

    // Suspension: tokens stop at once, sign-in says suspended; reactivation lets them in.
    let token = token_of(&app.login("target@test.example", PASSWORD).await);
    let suspended: Value = patch(&app, &admin, &id, json!({"status": "suspended"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(suspended["status"], "suspended");
    assert_problem(app.get("/v1/me", Some(&token)).await, 401, "invalid_token").await;
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "target@test.example", "password": PASSWORD}),
        )
        .await;
    assert_problem(login, 403, "account_suspended").await;
    patch(&app, &admin, &id, json!({"status": "active"})).await;
    assert_problem(app.get("/v1/me", Some(&token)).await, 401, "invalid_token").await;
    let token = token_of(&app.login("target@test.example", PASSWORD).await);

    // Email and display name.
    let renamed: Value = patch(
        &app,
        &admin,
        &id,
        json!({"email": "New@Test.example", "display_name": "  Nouveau  "}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(renamed["email"], "new@test.example");
    assert_eq!(renamed["display_name"], "Nouveau");
    app.login("new@test.example", PASSWORD).await;
    assert_problem(
        patch(&app, &admin, &id, json!({"email": ADMIN_EMAIL})).await,
        409,
        "email_taken",
    )
    .await;
    for (body, field) in [
        (json!({"email": "nope"}), "email"),
        (json!({"role": "god"}), "role"),
        (json!({"status": "deleted"}), "status"),
        (json!({"password": "x"}), "password"),
    ] {
        let problem = assert_problem(
            patch(&app, &admin, &id, body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field);
    }

    // Details for admins.
    let detail: Value = app
        .get(&format!("/v1/admin/accounts/{id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(detail["last_login_at"].is_string());
    assert_eq!(detail["active_sessions"], 2);

    // Deletion: the token stops, the account is gone.
    let response = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/accounts/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_problem(app.get("/v1/me", Some(&token)).await, 401, "invalid_token").await;
    assert_problem(
        app.get(&format!("/v1/admin/accounts/{id}"), Some(&admin))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_last_active_admin_stays() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let me: Value = app.get("/v1/me", Some(&admin)).await.json().await.unwrap();
    let id = me["id"].as_str().unwrap();
    for body in [json!({"role": "editor"}), json!({"status": "suspended"})] {
        assert_problem(patch(&app, &admin, id, body).await, 409, "last_admin").await;
    }
    assert_problem(
        app.request(
            Method::DELETE,
            &format!("/v1/admin/accounts/{id}"),
            Some(&admin),
            None,
        )
        .await,
        409,
        "last_admin",
    )
    .await;
    assert_problem(
        app.request(
            Method::DELETE,
            "/v1/me",
            Some(&admin),
            Some(json!({"password": ADMIN_PASSWORD})),
        )
        .await,
        409,
        "last_admin",
    )
    .await;
    // A suspended admin does not count.
    let second = create(
        &app,
        &admin,
        json!({"email": "second@test.example", "password": PASSWORD, "role": "admin"}),
    )
    .await;
    let second_id = second["id"].as_str().unwrap();
    patch(&app, &admin, second_id, json!({"status": "suspended"})).await;
    assert_problem(
        patch(&app, &admin, id, json!({"role": "reader"})).await,
        409,
        "last_admin",
    )
    .await;
    // Nothing was changed by the refusals.
    let after: Value = app.get("/v1/me", Some(&admin)).await.json().await.unwrap();
    assert_eq!(
        (after["role"].as_str(), after["status"].as_str()),
        (Some("admin"), Some("active"))
    );
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one() {
    let app = TestApp::spawn().await;
    let first = app.admin_token().await;
    let first_id = app
        .get("/v1/me", Some(&first))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second_id = create(
        &app,
        &first,
        json!({"email": "second@test.example", "password": PASSWORD, "role": "admin"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = token_of(&app.login("second@test.example", PASSWORD).await);
    for _ in 0..5 {
        let (a, b) = tokio::join!(
            patch(&app, &first, &second_id, json!({"role": "reader"})),
            patch(&app, &second, &first_id, json!({"role": "reader"})),
        );
        let statuses = [a.status().as_u16(), b.status().as_u16()];
        let admins = app
            .get("/v1/admin/accounts?role=admin&status=active", Some(&first))
            .await;
        let admins = if admins.status() == 200 {
            admins
        } else {
            app.get("/v1/admin/accounts?role=admin&status=active", Some(&second))
                .await
        };
        let admins: Value = admins.json().await.unwrap();
        assert_eq!(
            admins["items"].as_array().unwrap().len(),
            1,
            "exactly one admin left; answers {statuses:?}"
        );
        // The loser is refused by the last-admin rule when both passed the role check
        // together, or as a non-admin when the winner's change came first.
        let mut sorted = statuses;
        sorted.sort();
        assert!(
            sorted == [200, 403] || sorted == [200, 409],
            "one demotion wins: {statuses:?}"
        );
        // Restore both admins for the next round.
        let winner_is_first = a.status() == 200;
        let (token, other) = if winner_is_first {
            (&first, &second_id)
        } else {
            (&second, &first_id)
        };
        assert_eq!(
            patch(&app, token, other, json!({"role": "admin"}))
                .await
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn every_admin_change_is_audited_without_secrets() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = app
        .get("/v1/me", Some(&admin))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = create(
        &app,
        &admin,
        json!({"email": "audited@test.example", "password": PASSWORD}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    patch(
        &app,
        &admin,
        &id,
        json!({"display_name": "Audited", "role": "editor"}),
    )
    .await;
    let reset: Value = app
        .request(
            Method::POST,
            &format!("/v1/admin/accounts/{id}/password-reset"),
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    app.request(
        Method::PUT,
        &format!("/v1/admin/accounts/{id}/subscription"),
        Some(&admin),
        Some(json!({"plan": "digital"})),
    )
    .await;
    app.request(
        Method::DELETE,
        &format!("/v1/admin/accounts/{id}/subscription"),
        Some(&admin),
        None,
    )
    .await;
    app.request(
        Method::DELETE,
        &format!("/v1/admin/accounts/{id}/sessions"),
        Some(&admin),
        None,
    )
    .await;
    app.article(
        &admin,
        json!({"title": "T", "slug": "t", "body": "a b", "section": "s", "access": "free"}),
    )
    .await;
    app.request(
        Method::PATCH,
        "/v1/admin/articles/t",
        Some(&admin),
        Some(json!({"title": "T2"})),
    )
    .await;
    app.request(Method::DELETE, "/v1/admin/articles/t", Some(&admin), None)
        .await;
    app.request(
        Method::DELETE,
        &format!("/v1/admin/accounts/{id}"),
        Some(&admin),
        None,
    )
    .await;
    // A refused change writes nothing.
    patch(&app, &admin, &admin_id, json!({"role": "reader"})).await;

    let log: Value = app
        .get("/v1/admin/audit?limit=100", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let items = log["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "account.delete",
            "article.delete",
            "article.update",
            "article.create",
            "sessions.revoke",
            "subscription.delete",
            "subscription.put",
            "account.password_reset",
            "account.update",
            "account.create",
        ],
        "newest first, one per change"
    );
    for item in items {
        assert_eq!(item["actor_id"], admin_id.as_str());
        assert!(item["id"].is_string() && item["at"].is_string() && item["details"].is_object());
    }
    let update = &items[8];
    assert_eq!(update["target_type"], "account");
    assert_eq!(update["target_id"], id.as_str());
    assert_eq!(
        update["details"]["changes"]["role"],
        json!({"from": "reader", "to": "editor"})
    );
    let text = log.to_string();
    for secret in [
        PASSWORD,
        ADMIN_PASSWORD,
        reset["token"].as_str().unwrap(),
        "$argon2",
        &admin,
    ] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }

    // Filters.
    let by_action: Value = app
        .get("/v1/admin/audit?action=account.update", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_action["items"].as_array().unwrap().len(), 1);
    let by_target: Value = app
        .get(&format!("/v1/admin/audit?target={id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_target["items"].as_array().unwrap().len(), 7);
    let by_actor: Value = app
        .get(
            &format!("/v1/admin/audit?actor={admin_id}&limit=4"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_actor["items"].as_array().unwrap().len(), 4);
    assert!(by_actor["next_cursor"].is_string());
    let nobody: Value = app
        .get("/v1/admin/audit?actor=nobody", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(nobody["items"].as_array().unwrap().len(), 0);
    assert_problem(
        app.get("/v1/admin/audit?limit=500", Some(&admin)).await,
        400,
        "invalid_request",
    )
    .await;
}

// ASVS 5.0 V6.3.1 (brute force throttled, the owner elsewhere not locked out) and
// V6.1.1; forged X-Forwarded-For is believed only from trusted proxies.
#[tokio::test]
async fn throttled_login_bursts_are_refused_and_audited() {
    let app = TestApp::spawn_with(&[
        ("PAYWALL_LOGIN_MAX_FAILURES", "3"),
        ("PAYWALL_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let admin = app.admin_token().await;
    app.reader("victim@test.example").await;
    let attempt = |password: &'static str, from: &'static str| {
        app.client
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": "victim@test.example", "password": password}))
            .send()
    };
    for _ in 0..3 {
        assert_problem(
            attempt("wrong-guess-123", "198.51.100.7").await.unwrap(),
            401,
            "invalid_credentials",
        )
        .await;
    }
    // Blocked now, even with the right password, from that address.
    let blocked = attempt(PASSWORD, "198.51.100.7").await.unwrap();
    let retry: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900);
    assert_problem(blocked, 429, "rate_limited").await;
    // The owner, elsewhere, is not locked out.
    assert_eq!(
        attempt(PASSWORD, "203.0.113.20").await.unwrap().status(),
        200
    );

    let log: Value = app
        .get("/v1/admin/audit?action=login.throttled", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one entry per burst");
    assert_eq!(items[0]["details"]["client_address"], "198.51.100.7");
    assert_eq!(items[0]["details"]["email"], "victim@test.example");
    assert!(!log.to_string().contains("wrong-guess-123"));
}
