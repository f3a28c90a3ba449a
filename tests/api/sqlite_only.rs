//! What only a SQLite deployment has: `paywall backup` and `paywall restore`.

use serde_json::json;

use crate::helpers::*;

// An online backup under write load holds every write acknowledged before it began and
// passes the integrity check; a restore is refused while the database serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_load_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("live.db").display());
    let app = TestApp::start(tempfile::tempdir().unwrap(), db_url.clone(), &[]).await;
    let admin = app.admin_token().await;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base, admin, acknowledged, stop) = (
            app.client.clone(),
            app.base.clone(),
            admin.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let slug = format!("live-{w}-{i}");
                let r = client
                    .post(format!("{base}/v1/admin/articles"))
                    .bearer_auth(&admin)
                    .json(&json!({"title": slug, "slug": slug, "body": "Text.", "section": "s", "access": "free"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                acknowledged.lock().unwrap().push(slug);
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let backup = dir.path().join("copy.db");
    let backup_path = backup.to_str().unwrap().to_string();
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| cli(&db_url, &["backup", &backup_path]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("integrity check: ok"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let (code, _, stderr) = tokio::task::block_in_place(|| cli(&db_url, &["backup", &backup_path]));
    assert_eq!(code, 1, "an existing file is never overwritten");
    assert!(stderr.contains("already exists"));

    let copy = paywall::store::Store::connect(&format!("sqlite://{backup_path}"))
        .await
        .unwrap();
    assert!(before.len() > 5, "the load ran");
    for slug in &before {
        assert!(
            copy.article_by_slug(slug).await.unwrap().is_some(),
            "{slug} missing from the backup"
        );
    }
    copy.close().await;

    let (code, _, stderr) =
        tokio::task::block_in_place(|| cli(&db_url, &["restore", &backup_path]));
    assert_eq!(code, 1);
    assert!(stderr.contains("in use"), "{stderr}");
    drop(app);

    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| cli(&db_url, &["restore", &backup_path]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let app = TestApp::start(tempfile::tempdir().unwrap(), db_url, &[]).await;
    let store = app.store().await;
    for slug in &before {
        assert!(
            store.article_by_slug(slug).await.unwrap().is_some(),
            "{slug} missing after the restore"
        );
    }
    let (code, _, stderr) = tokio::task::block_in_place(|| {
        cli(
            "sqlite:///tmp/x-not-used.db",
            &["restore", "/nonexistent/backup.db"],
        )
    });
    assert_eq!(code, 1, "{stderr}");
}

/// Runs the binary on `db_url` without any signing secret in the environment.
fn cli_without_secret(db_url: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = paywall_command(dir.path())
        .args(args)
        .env("DATABASE_URL", db_url)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// The generated secret signs tokens and keys meter ids and gift links: a backup takes
// it along and a restore brings it back, so readers stay signed in and keep their
// meters; the database a restore replaces is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_keeps_the_generated_secret_and_a_restore_keeps_what_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let db_url = format!("sqlite://{}", db.display());
    let unset = [("PAYWALL_JWT_SECRET", "")];
    let app = TestApp::start(tempfile::tempdir().unwrap(), db_url.clone(), &unset).await;
    let admin = app.admin_token().await;
    app.article(&admin, json!({"title": "Kept", "slug": "kept", "body": "Text.", "section": "s", "access": "free", "status": "published"}))
        .await;
    let backup = dir.path().join("copy.db");
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        cli_without_secret(&db_url, &["backup", backup.to_str().unwrap()])
    });
    assert_eq!(code, 0, "{stdout}{stderr}");
    let secret_copy = dir.path().join("copy.db.jwt-secret");
    assert!(stdout.contains("copy.db.jwt-secret"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&secret_copy).unwrap(),
        std::fs::read_to_string(dir.path().join("live.db.jwt-secret")).unwrap()
    );
    assert_eq!(mode_of(&secret_copy), 0o600);

    // After the backup: an article written, and the secret file lost.
    app.article(&admin, json!({"title": "Later", "slug": "later", "body": "Text.", "section": "s", "access": "free", "status": "published"}))
        .await;
    drop(app);
    std::fs::remove_file(dir.path().join("live.db.jwt-secret")).unwrap();

    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        cli_without_secret(&db_url, &["restore", backup.to_str().unwrap()])
    });
    assert_eq!(code, 0, "{stdout}{stderr}");
    let kept = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("live.db.before-restore-"))
        })
        .expect("the replaced database is kept");
    assert!(stdout.contains(kept.to_str().unwrap()), "{stdout}");
    let replaced = paywall::store::Store::connect(&format!("sqlite://{}", kept.display()))
        .await
        .unwrap();
    assert!(
        replaced.article_by_slug("later").await.unwrap().is_some(),
        "the kept copy holds what the restore replaced"
    );
    replaced.close().await;

    // The restored database with its secret: the admin's token from before still works.
    let app = TestApp::start(tempfile::tempdir().unwrap(), db_url, &unset).await;
    assert_eq!(app.get("/v1/me", Some(&admin)).await.status(), 200);
    assert_eq!(app.get("/v1/articles/kept", None).await.status(), 200);
    assert_eq!(app.get("/v1/articles/later", None).await.status(), 404);
}

#[test]
fn a_backup_with_a_configured_secret_says_it_is_not_in_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("db.db").display());
    let (code, _, stderr) = cli(&db_url, &["migrate"]);
    assert_eq!(code, 0, "{stderr}");
    let backup = dir.path().join("copy.db");
    let (code, stdout, stderr) = cli(&db_url, &["backup", backup.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("PAYWALL_JWT_SECRET"), "{stdout}");
    assert!(!dir.path().join("copy.db.jwt-secret").exists());
}
