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
