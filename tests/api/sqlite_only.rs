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

/// A tmpfs of `size` mounted on `dir` for as long as it lives (needs root; None when
/// this machine refuses).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // The last partial block too.
        while file.write_all(&block[..512]).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

// A full disk: reads go on (cached or not), writes and charges are 503 `storage_full`,
// never 500, and `/readyz` says so; once space is freed, writes work again by
// themselves, with nothing acknowledged lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_cleanly_and_they_resume_once_space_is_back() {
    let Some(disk) = SmallDisk::mount("16m") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must be able to mount a tmpfs"
        );
        println!("full-disk test skipped: this machine cannot mount a tmpfs here");
        return;
    };
    let db_url = format!("sqlite://{}", disk.path().join("paywall.db").display());
    let app = TestApp::start_logging(
        tempfile::tempdir().unwrap(),
        db_url,
        &[("PAYWALL_METER_UNIDENTIFIED_PER_DAY", "1000")],
    )
    .await;
    let admin = app.admin_token().await;
    for (slug, access) in [("open", "free"), ("counted", "metered")] {
        app.article(&admin, json!({"title": slug, "slug": slug, "body": long_body(6), "section": "s", "access": access, "status": "published"}))
            .await;
    }
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let filler = disk.fill();

    // Writes until one is refused: the write-ahead log reuses its space for a while.
    let big = "Long paragraph of an archive. ".repeat(1_000);
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let response = app
            .post("/v1/admin/articles", Some(&admin), json!({"title": format!("Full {i}"), "slug": format!("full-{i}"), "body": big, "section": "s", "access": "free", "status": "published"}))
            .await;
        match response.status().as_u16() {
            201 => acknowledged.push(format!("full-{i}")),
            _ => {
                refused = Some(response);
                break;
            }
        }
    }
    let refused = refused.expect("a write is refused on a full disk");
    if refused.status() != 503 {
        println!("{}", app.log_text());
    }
    assert_problem(refused, 503, "storage_full").await;
    assert_problem(app.get("/readyz", None).await, 503, "storage_full").await;
    // Reads go on, a new meter's charge is refused as cleanly.
    assert_eq!(app.get("/v1/articles/open", None).await.status(), 200);
    let registered = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "full@test.example", "password": PASSWORD}),
        )
        .await;
    if registered.status() != 503 {
        println!("{}", app.log_text());
    }
    assert_problem(registered, 503, "storage_full").await;
    for _ in 0..5 {
        let status = app
            .get("/v1/articles/counted", None)
            .await
            .status()
            .as_u16();
        assert!(
            status == 200 || status == 503,
            "a metered read on a full disk: {status}"
        );
    }

    std::fs::remove_file(filler).unwrap();
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let response = app
        .post("/v1/admin/articles", Some(&admin), json!({"title": "After", "slug": "after", "body": "Room again.", "section": "s", "access": "free", "status": "published"}))
        .await;
    assert_eq!(response.status(), 201, "the first write once space is back");
    app.reader("after-full@test.example").await;
    let (view, _) = (app.get("/v1/articles/counted", None).await, ());
    assert_eq!(view.status(), 200);
    for slug in &acknowledged {
        assert_eq!(
            app.get(&format!("/v1/articles/{slug}"), None)
                .await
                .status(),
            200,
            "{slug} was acknowledged"
        );
    }
    drop(app);
}
