//! `paywall import-articles`: JSON Lines, a WordPress export and a Ghost export, through
//! the real binary, then read back over HTTP.

use std::io::Read;
use std::process::Stdio;

use serde_json::{json, Value};

use crate::helpers::*;

fn fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

async fn admin_article(app: &TestApp, admin: &str, slug: &str) -> Value {
    let response = app
        .get(&format!("/v1/admin/articles/{slug}"), Some(admin))
        .await;
    let status = response.status();
    let article: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{slug}: {article}");
    article
}

async fn article_count(app: &TestApp, admin: &str) -> usize {
    let page: Value = app
        .get("/v1/admin/articles?limit=100", Some(admin))
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn json_lines_are_imported_reported_and_updated_on_a_second_run() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("archive.jsonl");
    let lines = [
        json!({"title": "Vingt ans de marché", "body": long_body(5), "section": "Ville", "access": "free",
               "status": "published", "published_at": "2006-05-01T08:00:00Z",
               "external_id": "cms-1", "canonical_url": "https://old.example.com/marche"}).to_string(),
        json!({"title": "Le pont", "body_html": "<p>Le <strong>pont</strong> rouvre.</p><p>Enfin.</p>",
               "external_id": "cms-2"}).to_string(),
        String::new(),
        "{not json".to_string(),
        json!({"body": "No title here.", "section": "s", "access": "free", "external_id": "cms-4"}).to_string(),
        json!({"title": "Taken", "slug": "vingt-ans-de-marche", "body": "Text.", "external_id": "cms-5"}).to_string(),
        json!({"title": "Sans identifiant", "body": "Un texte.", "section": "s", "access": "free"}).to_string(),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let path = file.to_str().unwrap();
    let (code, stdout, stderr) = cli(&app.db_url, &["import-articles", path]);
    assert_eq!(code, 1, "some lines were refused: {stdout} {stderr}");
    let report: Vec<&str> = stdout.lines().collect();
    assert!(
        report[0].starts_with("line 4: refused: not valid JSON"),
        "{stdout}"
    );
    assert!(
        report[1].starts_with("line 5: refused: title: is required"),
        "{stdout}"
    );
    assert!(
        report[2].starts_with("line 6: refused: slug: slug_taken"),
        "{stdout}"
    );
    assert_eq!(
        report[3],
        "created 3, updated 0, refused 3, skipped 0 (not articles)"
    );
    assert!(stderr.contains("3 item(s) refused"), "{stderr}");

    let market = admin_article(&app, &admin, "vingt-ans-de-marche").await;
    assert_eq!(market["external_id"], "cms-1");
    assert_eq!(market["canonical_url"], "https://old.example.com/marche");
    assert_eq!(market["published_at"], "2006-05-01T08:00:00Z");
    assert_eq!(market["status"], "published");
    let bridge = admin_article(&app, &admin, "le-pont").await;
    assert_eq!(bridge["body_source"], "Le **pont** rouvre.\n\nEnfin.");
    // What an item does not say: the command's defaults, and a draft as in the API.
    assert_eq!(bridge["access"], "metered");
    assert_eq!(bridge["section"], "news");
    assert_eq!(bridge["status"], "draft");
    let public: Value = app
        .get("/v1/articles/vingt-ans-de-marche", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public["title"], "Vingt ans de marché");
    assert!(public.get("external_id").is_none(), "readers do not see it");

    // A second run of an edited file updates by external id; a line without one is
    // new each time.
    let mut edited = lines.clone();
    edited[0] = edited[0].replace("Vingt ans de marché", "Vingt ans de marché, édition revue");
    std::fs::write(&file, edited.join("\n")).unwrap();
    let (code, stdout, _) = cli(&app.db_url, &["import-articles", path]);
    assert_eq!(code, 1);
    assert!(
        stdout.ends_with("created 1, updated 2, refused 3, skipped 0 (not articles)\n"),
        "{stdout}"
    );
    let market = admin_article(&app, &admin, "vingt-ans-de-marche").await;
    assert_eq!(market["title"], "Vingt ans de marché, édition revue");
    assert_eq!(market["id"], market["id"]);
    assert_eq!(article_count(&app, &admin).await, 4);
    assert_eq!(
        admin_article(&app, &admin, "sans-identifiant-2").await["external_id"],
        Value::Null
    );
}

#[tokio::test]
async fn a_wordpress_export_is_imported_as_articles() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let file = fixture("wordpress/small-site.xml");
    let (code, stdout, stderr) = cli(
        &app.db_url,
        &["import-articles", &file, "--access", "subscribers"],
    );
    assert_eq!(code, 1, "{stdout} {stderr}");
    let report: Vec<&str> = stdout.lines().collect();
    assert!(report[0].starts_with("item 4: refused: title:"), "{stdout}");
    assert_eq!(
        report[1],
        "created 3, updated 0, refused 1, skipped 2 (not articles)"
    );

    let budget = admin_article(&app, &admin, "le-budget-de-la-commune-adopte").await;
    assert_eq!(budget["title"], "Le budget de la commune adopté");
    assert_eq!(budget["section"], "Politique");
    assert_eq!(budget["author"], "Marie Lefort");
    assert_eq!(budget["standfirst"], "Le conseil a voté le budget 2026.");
    assert_eq!(budget["status"], "published");
    assert_eq!(budget["access"], "subscribers");
    assert_eq!(budget["published_at"], "2026-01-15T08:30:00Z");
    assert_eq!(
        budget["external_id"],
        "https://gazette-du-val.example/?p=101"
    );
    assert_eq!(
        budget["canonical_url"],
        "https://gazette-du-val.example/2026/01/15/le-budget-de-la-commune-adopte/"
    );
    let source = budget["body_source"].as_str().unwrap();
    assert!(source.contains("**le budget 2026**"), "{source}");
    assert!(
        source.contains("\n<!-- paywall -->\n"),
        "the more mark: {source}"
    );
    assert!(source.contains("## Ce que dit l'opposition"), "{source}");
    assert!(source
        .contains("[Le document complet](https://gazette-du-val.example/documents/budget.pdf)"));
    assert!(
        !source.contains("wp:paragraph") && !source.contains("Enfin !"),
        "{source}"
    );
    // The teaser ends where WordPress's "more" did, on a whole paragraph.
    let teaser: Value = app
        .get("/v1/articles/le-budget-de-la-commune-adopte", None)
        .await
        .json()
        .await
        .unwrap();
    let shown = teaser["body"].as_str().unwrap();
    assert!(shown.ends_with("l'école et la voirie."), "{shown}");
    assert_eq!(teaser["truncated"], true);

    let classic = admin_article(&app, &admin, "elysee-et-region").await;
    assert_eq!(classic["title"], "L’élysée et la région & le département");
    assert_eq!(classic["author"], "Paul Brun");
    assert_eq!(
        classic["section"], "news",
        "no category: the default section"
    );
    let paragraphs: Vec<&str> = classic["body_source"]
        .as_str()
        .unwrap()
        .split("\n\n")
        .collect();
    assert_eq!(paragraphs.len(), 4, "{paragraphs:?}");
    assert!(paragraphs[1].contains("*mot*") || paragraphs[1].contains("_mot_"));

    let draft = admin_article(&app, &admin, "brouillon-la-piscine-municipale").await;
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["published_at"], Value::Null);
    assert_eq!(draft["section"], "Société");

    // Again: the same three articles, updated.
    let (_, stdout, _) = cli(
        &app.db_url,
        &["import-articles", &file, "--format", "wordpress"],
    );
    assert!(
        stdout.ends_with("created 0, updated 3, refused 1, skipped 2 (not articles)\n"),
        "{stdout}"
    );
    assert_eq!(article_count(&app, &admin).await, 3);
    let budget_again = admin_article(&app, &admin, "le-budget-de-la-commune-adopte").await;
    assert_eq!(budget_again["id"], budget["id"]);
    assert_eq!(
        budget_again["access"], "subscribers",
        "an update keeps what the item does not say"
    );
}

#[tokio::test]
async fn a_ghost_export_is_imported_as_articles() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let file = fixture("ghost/small-site.json");
    let (code, stdout, stderr) = cli(&app.db_url, &["import-articles", &file]);
    assert_eq!(code, 1, "{stdout} {stderr}");
    let report: Vec<&str> = stdout.lines().collect();
    assert!(
        report[0].starts_with("post 5 (lost-body): refused: body:"),
        "{stdout}"
    );
    assert_eq!(
        report[1],
        "created 3, updated 0, refused 1, skipped 1 (not articles)"
    );

    let harbour = admin_article(&app, &admin, "the-harbour-reopens").await;
    assert_eq!(harbour["access"], "free");
    assert_eq!(harbour["section"], "Local");
    assert_eq!(harbour["author"], "Ada Harbour");
    assert_eq!(harbour["standfirst"], "The harbour is open again.");
    assert_eq!(harbour["published_at"], "2026-01-10T09:00:00Z");
    assert_eq!(harbour["external_id"], "ghost:65a1f0c2e4b0a1b2c3d4e501");
    assert_eq!(
        harbour["canonical_url"],
        "https://harbour-news.example/the-harbour-reopens/"
    );
    let budget = admin_article(&app, &admin, "inside-the-councils-budget").await;
    assert_eq!(budget["access"], "subscribers");
    assert_eq!(budget["section"], "Politics", "the primary tag");
    assert_eq!(budget["author"], "Ben Quay", "the first author");
    let source = budget["body_source"].as_str().unwrap();
    assert!(source.contains("\n<!-- paywall -->\n"), "{source}");
    assert!(source.contains("> We had no choice"), "{source}");
    let teaser: Value = app
        .get("/v1/articles/inside-the-councils-budget", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        teaser["body"].as_str().unwrap().ends_with("line by line."),
        "{teaser}"
    );
    let letter = admin_article(&app, &admin, "members-letter-january").await;
    assert_eq!(letter["access"], "registered");
    assert_eq!(letter["status"], "draft");
    assert_problem(app.get("/v1/articles/about", None).await, 404, "not_found").await;
}

#[tokio::test]
async fn unreadable_files_and_bad_options_are_reported() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let html = write("page.xml", "<html><body><p>no export</p></body></html>");
    let truncated = write(
        "cut.xml",
        "<rss><channel><item><title>Cut</title><content:encoded><![CDATA[<p>x</p>]]></content:encoded>",
    );
    let ghost = write("ghost.json", "{\"db\": [");
    let plain = write("notes.txt", "hello");
    for (args, expected) in [
        (
            vec!["import-articles", "/nonexistent/archive.jsonl"],
            "/nonexistent/archive.jsonl",
        ),
        (vec!["import-articles", &html], "no <item>"),
        (
            vec!["import-articles", &truncated],
            "not a readable WordPress export",
        ),
        (vec!["import-articles", &ghost], "not a Ghost export"),
        (vec!["import-articles", &plain], "--format"),
        (
            vec!["import-articles", &plain, "--format", "csv"],
            "--format \"csv\"",
        ),
        (
            vec!["import-articles", &html, "--access", "premium"],
            "--access",
        ),
        (vec!["import-articles", &html, "--section", ""], "--section"),
    ] {
        let (code, stdout, stderr) = cli(&app.db_url, &args);
        assert_eq!(code, 1, "{args:?}: {stdout} {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let admin = app.admin_token().await;
    assert_eq!(article_count(&app, &admin).await, 0);
}

#[test]
fn a_progress_bar_is_drawn_on_a_terminal() {
    if !std::path::Path::new("/usr/bin/script").is_file() {
        println!("terminal test skipped: util-linux's script is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "import-tty");
    let file = dir.path().join("many.jsonl");
    let lines: Vec<String> = (0..3_000)
        .map(|n| {
            json!({"title": format!("Archive {n}"), "body": long_body(3), "section": "s",
                   "access": "free", "external_id": format!("a-{n}")})
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let command = format!(
        "{} import-articles {}",
        env!("CARGO_BIN_EXE_paywall"),
        file.display()
    );
    let mut script = std::process::Command::new("/usr/bin/script");
    script.args(["-qefc", &command, "/dev/null"]);
    for (name, _) in std::env::vars() {
        if name.starts_with("PAYWALL_") || name == "DATABASE_URL" {
            script.env_remove(name);
        }
    }
    let mut child = script
        .current_dir(dir.path())
        .env("DATABASE_URL", &db.url)
        .env("PAYWALL_JWT_SECRET", SECRET)
        .env("PAYWALL_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut shown = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut shown)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{shown}");
    assert!(
        shown.contains("importing ["),
        "a bar on the terminal: {shown}"
    );
    assert!(
        shown.contains("created 3000, updated 0, refused 0"),
        "{shown}"
    );
}

#[tokio::test]
async fn an_import_tells_webhooks_what_it_published() {
    use crate::webhooks::{first_receipts, receiving, PRIVATE_OK};
    let app = TestApp::spawn_with(&[PRIVATE_OK]).await;
    let admin = app.admin_token().await;
    let (receiver, _) = receiving(&app, &admin, &["article.published", "article.updated"]).await;
    let file = fixture("ghost/small-site.json");
    let (code, _, _) = cli(&app.db_url, &["import-articles", &file]);
    assert_eq!(code, 1, "the post without html is refused");
    let accepted = receiver
        .wait_accepted(2, std::time::Duration::from_secs(15))
        .await;
    let mut told: Vec<String> = first_receipts(&accepted)
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.body["type"].as_str().unwrap(),
                r.body["data"]["slug"].as_str().unwrap()
            )
        })
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            "article.published inside-the-councils-budget",
            "article.published the-harbour-reopens"
        ]
    );
    assert!(accepted.iter().all(|r| r.body["data"]["external_id"]
        .as_str()
        .unwrap()
        .starts_with("ghost:")));
    // Again: each published article is updated, the draft tells nothing.
    cli(&app.db_url, &["import-articles", &file]);
    let accepted = receiver
        .wait_accepted(4, std::time::Duration::from_secs(15))
        .await;
    let updates = first_receipts(&accepted)
        .iter()
        .filter(|r| r.body["type"] == "article.updated")
        .count();
    assert_eq!(updates, 2);
}
