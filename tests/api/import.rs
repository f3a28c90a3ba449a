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
        "email,display_name,role,subscription_plan,subscription_expires_at,password_hash"
    ));
    assert!(csv.contains("j1@test.example,Jé,reader,print,,"));
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
    assert!(stderr.contains("unknown CSV column"), "{stderr}");
}
