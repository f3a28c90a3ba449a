//! The command line: settings refused by name, migrate, create-admin.

use std::io::Write;
use std::process::Stdio;

use crate::helpers::*;

fn run(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let mut command = paywall_command(dir);
    command.args(args).envs(env.iter().copied());
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_stop_start_up_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("PAYWALL_JWT_SECRET", "too-short"),
        ("PAYWALL_TEASER_RATIO", "1.2"),
        ("PAYWALL_BIND", "somewhere"),
        ("PAYWALL_ACCESS_TOKEN_TTL_SECS", "soon"),
        ("PAYWALL_REGISTRATION", "sometimes"),
    ] {
        let (code, _, stderr) = run(dir.path(), &["serve"], &[(name, value)], None);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
    }
    assert!(
        !dir.path().join("paywall.db").exists(),
        "nothing is created on a bad setting"
    );
}

#[tokio::test]
async fn migrate_and_create_admin() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "cli");
    let db_url = db.url.clone();
    let env = [
        ("DATABASE_URL", db_url.as_str()),
        ("PAYWALL_JWT_SECRET", SECRET),
    ];
    let (code, stdout, stderr) = run(dir.path(), &["migrate"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("migrations applied"));

    // The password comes from standard input when PAYWALL_ADMIN_PASSWORD is unset.
    let (code, _, stderr) = run(
        dir.path(),
        &["create-admin", "--email", "boss@test.example"],
        &env,
        Some("a-long-admin-phrase-Fauré\n"),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(
        dir.path(),
        &["create-admin", "--email", "boss@test.example"],
        &env,
        Some("a-long-admin-phrase-Fauré\n"),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("already exists"), "{stderr}");
    let (code, _, stderr) = run(
        dir.path(),
        &["create-admin", "--email", "weak@test.example"],
        &env,
        Some("password\n"),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("password"), "{stderr}");
    assert!(!stderr.contains("password\n\n"));

    let app = TestApp::start(
        tempfile::tempdir().unwrap(),
        db_url,
        &[("PAYWALL_ADMIN_EMAIL", ""), ("PAYWALL_ADMIN_PASSWORD", "")],
    )
    .await;
    let pair = app
        .login("boss@test.example", "a-long-admin-phrase-Fauré")
        .await;
    assert_eq!(pair["account"]["role"], "admin");
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = run(dir.path(), &["--help"], &[], None);
    assert_eq!(code, 0);
    for command in ["serve", "migrate", "create-admin", "demo"] {
        assert!(stdout.contains(command), "{command}");
    }
}

#[test]
fn check_config_prints_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("PAYWALL_JWT_SECRET", SECRET),
        ("PAYWALL_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("PAYWALL_TEASER_RATIO", "0.5"),
    ];
    let (code, stdout, stderr) = run(dir.path(), &["check-config"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("PAYWALL_TEASER_RATIO=0.5\n"));
    assert!(stdout.contains("PAYWALL_BIND=127.0.0.1:8080\n"));
    assert!(stdout.contains("PAYWALL_JWT_SECRET=<set>\n"));
    assert!(!stdout.contains(SECRET) && !stdout.contains(ADMIN_PASSWORD));
    let (code, _, stderr) = run(
        dir.path(),
        &["check-config"],
        &[("PAYWALL_TEASER_RATIO", "2")],
        None,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("PAYWALL_TEASER_RATIO"));
}
