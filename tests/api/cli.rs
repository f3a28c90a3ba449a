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
    let kid = paywall::auth::tokens::key_id(SECRET.as_bytes());
    assert!(
        stdout.contains(&format!("PAYWALL_JWT_SECRET=<set, key id {kid}>\n")),
        "{stdout}"
    );
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

#[test]
fn check_config_warns_of_misspelled_settings_naming_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("PAYWALL_JWT_SECRET", SECRET),
        ("PAYWALL_METER_ANONYMUS", "5"),
        ("PAYWALL_SOMETHING_ELSE_ENTIRELY", "1"),
    ];
    let (code, _, stderr) = run(dir.path(), &["check-config"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("PAYWALL_METER_ANONYMUS is not a setting and is ignored; did you mean PAYWALL_METER_ANONYMOUS?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("PAYWALL_SOMETHING_ELSE_ENTIRELY is not a setting and is ignored\n"),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_config_connect_says_whether_the_database_answers() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("PAYWALL_JWT_SECRET", SECRET),
        ("DATABASE_URL", app.db_url.as_str()),
    ];
    let (code, stdout, stderr) = run(dir.path(), &["check-config", "--connect"], &env, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("# database: answers; every migration is applied"),
        "{stdout}"
    );
    let unreachable = [
        ("PAYWALL_JWT_SECRET", SECRET),
        ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
        ("PAYWALL_DB_ACQUIRE_TIMEOUT_SECS", "1"),
    ];
    let (code, _, stderr) = run(
        dir.path(),
        &["check-config", "--connect"],
        &unreachable,
        None,
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("the database does not answer"), "{stderr}");
    // A SQLite file that does not exist is said so, and not made.
    let missing = dir.path().join("missing.db");
    let url = format!("sqlite://{}", missing.display());
    let (code, stdout, _) = run(
        dir.path(),
        &["check-config", "--connect"],
        &[("DATABASE_URL", &url)],
        None,
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("does not exist yet"), "{stdout}");
    assert!(!missing.exists());
}

#[test]
fn the_demo_removes_its_folder_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = paywall_command(dir.path())
        .arg("demo")
        .env("PAYWALL_BIND", "127.0.0.1:0")
        .env("TMPDIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut folder = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        if let Some(db) = line.strip_prefix("Paywall demo database: ") {
            folder = std::path::Path::new(db).parent().map(|p| p.to_path_buf());
        }
        if let Some(address) = line.strip_prefix("paywall listening on http://") {
            // Serving (and so handling Ctrl-C) once it answers.
            let address = address.to_string();
            let started = std::time::Instant::now();
            while std::net::TcpStream::connect(&address).is_err() {
                assert!(started.elapsed() < std::time::Duration::from_secs(10));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
            break;
        }
    }
    let folder = folder.expect("the demo names its database");
    assert!(folder.is_dir());
    let stopped = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!folder.exists(), "{} was left behind", folder.display());
}

// A password typed at a terminal is not echoed: create-admin runs on a pseudo-terminal
// (util-linux's `script`), the password is typed after the prompt, and what the
// terminal shows holds the prompt but not the password.
#[test]
fn create_admin_does_not_echo_a_password_typed_at_a_terminal() {
    use std::io::Read;
    if !std::path::Path::new("/usr/bin/script").is_file() {
        println!("terminal test skipped: util-linux's script is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::fresh(dir.path(), "tty");
    let command = format!(
        "{} create-admin --email tty@test.example",
        env!("CARGO_BIN_EXE_paywall")
    );
    let mut child = paywall_command(dir.path())
        .env("DATABASE_URL", &db.url)
        .env("PAYWALL_JWT_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_script(&command);
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("not shown") {
        let n = stdout.read(&mut buffer).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    // rpassword turns echo off just after writing the prompt; a person types later
    // than that, and so does this test.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"typed-admin-phrase-Poulenc-1899\r")
        .unwrap();
    stdout.read_to_end(&mut seen).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let shown = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{shown}");
    assert!(shown.contains("admin account created"), "{shown}");
    assert!(
        !shown.contains("typed-admin-phrase"),
        "the password was echoed: {shown}"
    );
}

trait SpawnScript {
    fn spawn_script(&mut self, command: &str) -> std::process::Child;
}

impl SpawnScript for std::process::Command {
    /// Runs `command` on a pseudo-terminal under `script`, with this command's
    /// environment and standard streams.
    fn spawn_script(&mut self, command: &str) -> std::process::Child {
        let mut script = std::process::Command::new("/usr/bin/script");
        script.args(["-qefc", command, "/dev/null"]);
        for (name, value) in self.get_envs() {
            match value {
                Some(value) => script.env(name, value),
                None => script.env_remove(name),
            };
        }
        script
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}
