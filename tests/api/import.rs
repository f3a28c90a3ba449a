//! `paywall import-accounts` and `export-accounts`.

use std::process::Stdio;

use serde_json::json;

use crate::helpers::*;

fn run(app_dir: &std::path::Path, db_url: &str, args: &[&str]) -> (i32, String, String) {
    let output = paywall_command(app_dir)
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("PAYWALL_JWT_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn import_reports_each_line_and_bcrypt_hashes_sign_in() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let bcrypted = bcrypt::hash("moved-from-elsewhere-42", 4).unwrap();
    let argon = paywall::auth::password::hash_blocking("argon-imported-Lalo-1823").unwrap();
    let csv = format!(
        "email,display_name,role,subscription_plan,subscription_expires_at,password_hash\n\
         one@test.example,One,,digital,2099-01-01T00:00:00Z,{bcrypted}\n\
         two@test.example,Two,editor,,,\"{argon}\"\n\
         not-an-email,,,,,\n\
         three@test.example,,,,,plaintext\n\
         ONE@test.example,Uno,,,,\n\
         {ADMIN_EMAIL},,reader,,,\n"
    );
    let file = dir.path().join("accounts.csv");
    std::fs::write(&file, csv).unwrap();
    let (code, stdout, stderr) = run(
        dir.path(),
        &app.db_url,
        &["import-accounts", file.to_str().unwrap()],
    );
    assert_eq!(code, 1, "some lines were refused: {stdout} {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "line 2: created one@test.example");
    assert_eq!(lines[1], "line 3: created two@test.example");
    assert!(
        lines[2].starts_with("line 4: refused: email:"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("line 5: refused: password_hash:"),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], "line 6: updated one@test.example");
    assert!(
        lines[5].starts_with("line 7: refused: role:"),
        "the last admin stays: {}",
        lines[5]
    );
    assert_eq!(lines[6], "created 2, updated 1, refused 3");
    assert!(!stdout.contains(&bcrypted) && !stdout.contains("$argon2"));

    // The imported bcrypt hash signs in as it is, and is re-made as Argon2id.
    let pair = app
        .login("one@test.example", "moved-from-elsewhere-42")
        .await;
    assert_eq!(pair["account"]["display_name"], "Uno");
    assert_eq!(pair["account"]["subscription"]["plan"], "digital");
    app.login("two@test.example", "argon-imported-Lalo-1823")
        .await;
    let store = app.store().await;
    let mut rehashed = false;
    for _ in 0..100 {
        let hash = store
            .account_by_email("one@test.example")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        if hash.starts_with("$argon2id$") {
            rehashed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rehashed, "bcrypt was replaced by Argon2id after sign-in");
    app.login("one@test.example", "moved-from-elsewhere-42")
        .await;
    assert!(
        store
            .account_by_email("three@test.example")
            .await
            .unwrap()
            .is_none(),
        "a refused line leaves nothing"
    );
    let admin = store.account_by_email(ADMIN_EMAIL).await.unwrap().unwrap();
    assert_eq!(admin.role, "admin");
}

#[tokio::test]
async fn json_lines_import_and_export_round_trip() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.jsonl");
    let lines = [
        json!({"email": "j1@test.example", "display_name": "Jé", "subscription_plan": "print"})
            .to_string(),
        String::new(),
        json!({"email": "j2@test.example", "role": "editor"}).to_string(),
        json!({"email": "j3@test.example", "password": "plain"}).to_string(),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (code, stdout, _) = run(
        dir.path(),
        &app.db_url,
        &["import-accounts", file.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(stdout.contains("line 1: created j1@test.example"));
    assert!(stdout.contains("line 3: created j2@test.example"));
    assert!(stdout.contains("line 4: refused:"));

    let (code, csv, _) = run(dir.path(), &app.db_url, &["export-accounts"]);
    assert_eq!(code, 0);
    assert!(csv.starts_with(
        "email,display_name,role,status,subscription_plan,subscription_started_at,subscription_expires_at,created_at,password_hash"
    ));
    assert!(csv.contains("j1@test.example,Jé,reader,active,print,"));
    assert!(!csv.contains("$argon2"), "no hashes unless asked");
    let (_, with_hashes, _) = run(
        dir.path(),
        &app.db_url,
        &[
            "export-accounts",
            "--format",
            "jsonl",
            "--with-password-hashes",
        ],
    );
    assert!(
        with_hashes.contains("$argon2id$"),
        "the admin's hash is exported when asked"
    );

    // An export imports back as updates.
    let exported = dir.path().join("export.csv");
    let (code, _, _) = run(
        dir.path(),
        &app.db_url,
        &["export-accounts", "--output", exported.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    let (code, stdout, stderr) = run(
        dir.path(),
        &app.db_url,
        &["import-accounts", exported.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.ends_with("created 0, updated 3, refused 0\n"),
        "{stdout}"
    );
}

#[test]
fn import_refuses_an_unknown_format_or_column() {
    let dir = tempfile::tempdir().unwrap();
    let test_db = TestDb::fresh(dir.path(), "x");
    let db = test_db.url.clone();
    let file = dir.path().join("accounts.txt");
    std::fs::write(&file, "email\n").unwrap();
    let (code, _, stderr) = run(
        dir.path(),
        &db,
        &["import-accounts", file.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("format"), "{stderr}");
    let file = dir.path().join("accounts.csv");
    std::fs::write(&file, "email,password\na@test.example,x\n").unwrap();
    let (code, _, stderr) = run(
        dir.path(),
        &db,
        &["import-accounts", file.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown column \"password\""), "{stderr}");
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn an_export_imported_into_an_empty_database_gives_every_account_back() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, _) = app.reader("kept@test.example").await;
    let (suspended, _) = app.reader("suspended@test.example").await;
    for (path, body) in [(
        format!("/v1/admin/accounts/{id}/subscription"),
        json!({"plan": "digital", "expires_at": "2031-05-01T00:00:00Z"}),
    )] {
        let response = app
            .request(reqwest::Method::PUT, &path, Some(&admin), Some(body))
            .await;
        assert_eq!(response.status(), 200);
    }
    let response = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v1/admin/accounts/{suspended}"),
            Some(&admin),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(response.status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("accounts.csv");
    // A file left from before with wide permissions is made private too.
    std::fs::write(&exported, "old").unwrap();
    std::fs::set_permissions(
        &exported,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let (code, _, stderr) = run(
        dir.path(),
        &app.db_url,
        &[
            "export-accounts",
            "--with-password-hashes",
            "--output",
            exported.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        mode_of(&exported),
        0o600,
        "an export with hashes is for its owner only"
    );

    let fresh = TestDb::fresh(dir.path(), "fresh");
    let (code, stdout, stderr) = run(
        dir.path(),
        &fresh.url,
        &["import-accounts", exported.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.ends_with("created 3, updated 0, refused 0\n"),
        "{stdout}"
    );
    let source = app.store().await;
    let target = paywall::store::Store::connect(&fresh.url).await.unwrap();
    for email in [ADMIN_EMAIL, "kept@test.example", "suspended@test.example"] {
        let before = source.account_by_email(email).await.unwrap().unwrap();
        let after = target.account_by_email(email).await.unwrap().unwrap();
        assert_eq!(
            (
                &after.display_name,
                &after.role,
                &after.status,
                &after.password_hash,
                &after.subscription_plan,
                after.subscription_started_at,
                after.subscription_expires_at,
                after.created_at,
            ),
            (
                &before.display_name,
                &before.role,
                &before.status,
                &before.password_hash,
                &before.subscription_plan,
                before.subscription_started_at,
                before.subscription_expires_at,
                before.created_at,
            ),
            "{email}"
        );
    }
    target.close().await;
}

#[tokio::test]
async fn imports_take_other_systems_files_as_they_come() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wordpress.csv");
    // As a WordPress export looks: its role names, dates alone, columns of its own, and
    // phpass hashes (phpass's own test vector, for the password test12345).
    std::fs::write(
        &file,
        "email,display_name,role,user_registered,subscription_plan,subscription_expires_at,password_hash\n\
         wp@test.example,WP Reader,subscriber,2019-03-04,digital,2031-12-31,$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0\n\
         boss@test.example,,administrator,2018-01-01,,,\n",
    )
    .unwrap();
    let (code, _, stderr) = run(
        dir.path(),
        &app.db_url,
        &["import-accounts", file.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("user_registered") && stderr.contains("--ignore-unknown"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(
        dir.path(),
        &app.db_url,
        &[
            "import-accounts",
            "--ignore-unknown",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("ignored unknown column(s): user_registered"),
        "{stdout}"
    );
    let store = app.store().await;
    let wp = store
        .account_by_email("wp@test.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wp.role, "reader");
    // Access through 31 December: it ends at midnight UTC after it.
    assert_eq!(wp.subscription_expires_at, Some(1_956_528_000));
    assert_eq!(
        store
            .account_by_email("boss@test.example")
            .await
            .unwrap()
            .unwrap()
            .role,
        "admin"
    );
    // The WordPress password signs in, and the hash is re-made as Argon2id.
    let pair = app.login("wp@test.example", "test12345").await;
    assert_eq!(pair["account"]["subscription"]["active"], true);
    let started = std::time::Instant::now();
    loop {
        let hash = store
            .account_by_email("wp@test.example")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        if hash.starts_with("$argon2id$") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{hash}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let wrong = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "wp@test.example", "password": "test12346"}),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn importing_a_suspension_ends_the_accounts_sessions() {
    let app = TestApp::spawn().await;
    let (_, token) = app.reader("leaving@test.example").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.jsonl");
    std::fs::write(
        &file,
        json!({"email": "leaving@test.example", "status": "suspended"}).to_string(),
    )
    .unwrap();
    let (code, stdout, stderr) = run(
        dir.path(),
        &app.db_url,
        &["import-accounts", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_problem(app.get("/v1/me", Some(&token)).await, 401, "invalid_token").await;
}

#[tokio::test]
async fn import_and_export_need_no_signing_secret() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.jsonl");
    std::fs::write(&file, json!({"email": "nosecret@test.example"}).to_string()).unwrap();
    for args in [
        vec!["import-accounts", file.to_str().unwrap()],
        vec!["export-accounts"],
    ] {
        let output = paywall_command(dir.path())
            .args(&args)
            .env("DATABASE_URL", &app.db_url)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Serving still needs it on PostgreSQL, and says so.
    if crate::BACKEND == paywall::store::Backend::Postgres {
        let output = paywall_command(dir.path())
            .arg("serve")
            .env("DATABASE_URL", &app.db_url)
            .env("PAYWALL_BIND", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("PAYWALL_JWT_SECRET"));
    }
}
