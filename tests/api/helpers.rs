//! Starts the real `paywall` binary on port 0 with a fresh database per test (SQLite, or
//! PostgreSQL in the `api_postgres` target), and speaks HTTP to it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use paywall::store::{Backend, Store};
use reqwest::{Method, Response};
use serde_json::{json, Value};

pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";
pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-passphrase-Ravel-1875";
pub const PASSWORD: &str = "reader-passphrase-Satie-1866";

/// The PostgreSQL server the `api_postgres` tests use: a URL whose user may create
/// databases. Each test gets a database of its own, dropped when it ends.
pub const POSTGRES_URL_VAR: &str = "PAYWALL_TEST_POSTGRES_URL";

/// A fresh, empty database for one test: a SQLite file in `dir`, or a new PostgreSQL
/// database (dropped on drop) when the tests run against PostgreSQL.
pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>,
}

/// Runs `work` on a runtime of its own, so that it can be waited for from `Drop` and
/// from synchronous tests alike.
fn on_own_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(work)
    })
    .join()
    .expect("database setup thread")
}

async fn postgres_admin(server: &str, statement: String) -> Result<(), sqlx::Error> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::postgres::PgConnection::connect(server).await?;
    conn.execute(statement.as_str()).await?;
    conn.close().await
}

/// The URL of database `name` on the server at `server`.
fn with_database(server: &str, name: &str) -> String {
    let (head, query) = match server.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (server, None),
    };
    let authority_end = head
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| head[start..].find('/').map(|j| start + j))
        .unwrap_or(head.len());
    let mut url = format!("{}/{name}", &head[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

impl TestDb {
    pub fn fresh(dir: &std::path::Path, name: &str) -> TestDb {
        match crate::BACKEND {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
                postgres: None,
            },
            Backend::Postgres => {
                let server = std::env::var(POSTGRES_URL_VAR)
                    .unwrap_or_else(|_| panic!("{POSTGRES_URL_VAR} is not set"));
                let database = format!("paywall_test_{}", uuid::Uuid::new_v4().simple());
                let create = format!("CREATE DATABASE {database}");
                let admin = server.clone();
                on_own_runtime(async move { postgres_admin(&admin, create).await }).unwrap_or_else(
                    |e| panic!("create a test database on {POSTGRES_URL_VAR}: {e}"),
                );
                TestDb {
                    url: with_database(&server, &database),
                    postgres: Some((server, database)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, database)) = self.postgres.take() {
            let drop = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
            let _ = on_own_runtime(async move { postgres_admin(&server, drop).await });
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db_url: String,
    /// Where the server's standard error goes, when a test reads its log.
    pub log_path: Option<std::path::PathBuf>,
    /// Kept so the database folder lives as long as the server.
    _dir: tempfile::TempDir,
    child: Child,
    /// The database this app made for itself, dropped after the server stops.
    db: Option<TestDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.db.take();
    }
}

/// The binary with no PAYWALL_* or DATABASE_URL from the caller's environment.
pub fn paywall_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_paywall"));
    for (name, _) in std::env::vars() {
        if name.starts_with("PAYWALL_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command.current_dir(dir).env("PAYWALL_LOG", "warn");
    command
}

/// Runs the binary with `args` on the database at `db_url` (with the test secret), and
/// returns its exit code, standard output and standard error.
pub fn cli(db_url: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = paywall_command(dir.path())
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("PAYWALL_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// `env` adds to or overrides the test defaults; a value of "" unsets a default.
    pub async fn spawn_with(env: &[(&str, &str)]) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::fresh(dir.path(), "test");
        let mut app = Self::start(dir, db.url.clone(), env).await;
        app.db = Some(db);
        app
    }

    /// Like `spawn_with`, with the server's log written to a file `log_text` reads.
    pub async fn spawn_logging(env: &[(&str, &str)]) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::fresh(dir.path(), "test");
        let mut app = Self::launch(dir, db.url.clone(), env, true).await;
        app.db = Some(db);
        app
    }

    /// Everything the server has logged so far (for a `spawn_logging` server).
    pub fn log_text(&self) -> String {
        let path = self.log_path.as_ref().expect("started with spawn_logging");
        std::fs::read_to_string(path).expect("read the server log")
    }

    pub async fn start(dir: tempfile::TempDir, db_url: String, env: &[(&str, &str)]) -> TestApp {
        Self::launch(dir, db_url, env, false).await
    }

    /// Like `start`, with the server's log written to a file `log_text` reads (for
    /// several instances on one database: the `api_postgres` target).
    #[allow(dead_code)]
    pub async fn start_logging(
        dir: tempfile::TempDir,
        db_url: String,
        env: &[(&str, &str)],
    ) -> TestApp {
        Self::launch(dir, db_url, env, true).await
    }

    async fn launch(
        dir: tempfile::TempDir,
        db_url: String,
        env: &[(&str, &str)],
        capture_log: bool,
    ) -> TestApp {
        let mut command = paywall_command(dir.path());
        let defaults = [
            ("PAYWALL_BIND", "127.0.0.1:0"),
            ("DATABASE_URL", db_url.as_str()),
            ("PAYWALL_JWT_SECRET", SECRET),
            ("PAYWALL_ADMIN_EMAIL", ADMIN_EMAIL),
            ("PAYWALL_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("PAYWALL_WORKERS", "2"),
        ];
        for (name, value) in defaults.iter().chain(env.iter()) {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let log_path = capture_log.then(|| dir.path().join("server.log"));
        let stderr = match &log_path {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None => Stdio::inherit(),
        };
        let mut child = command
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the paywall binary");
        let stdout = child.stdout.take().expect("stdout");
        let address = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let found = lines.by_ref().map_while(Result::ok).find_map(|line| {
                line.strip_prefix("paywall listening on ")
                    .map(str::to_string)
            });
            // Keep draining so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            found
        });
        let address = tokio::time::timeout(Duration::from_secs(60), address)
            .await
            .expect("server started within a minute")
            .expect("reader thread")
            .expect("server printed its address");
        TestApp {
            base: address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            db_url,
            log_path,
            _dir: dir,
            child,
            db: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Lets the load run for `after`, then kills the server with SIGKILL and waits for
    /// it to be gone (on a multi-threaded test runtime).
    pub async fn kill_after(&mut self, after: Duration) {
        tokio::time::sleep(after).await;
        let killed = Command::new("kill")
            .args(["-KILL", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        tokio::task::block_in_place(|| self.wait_exit(Duration::from_secs(10)));
    }

    /// After a crash: a SQLite database passes its integrity check (PostgreSQL keeps
    /// its own).
    pub async fn assert_database_intact(&self) {
        if crate::BACKEND != Backend::Sqlite {
            return;
        }
        let options: sqlx::sqlite::SqliteConnectOptions = self.db_url.parse().unwrap();
        let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }

    /// Opens the same database as the server, for arranging state the API does not
    /// offer yet (subscriptions, roles) and for checking what was stored.
    pub async fn store(&self) -> Store {
        Store::connect(&self.db_url)
            .await
            .expect("open the test database")
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email}");
        response.json().await.expect("token pair")
    }

    pub async fn admin_token(&self) -> String {
        token_of(&self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await)
    }

    /// Registers a reader and signs in; returns (account id, access token).
    pub async fn reader(&self, email: &str) -> (String, String) {
        let response = self
            .post(
                "/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 201, "register {email}");
        let account: Value = response.json().await.expect("account");
        let pair = self.login(email, PASSWORD).await;
        (
            account["id"].as_str().expect("id").to_string(),
            token_of(&pair),
        )
    }

    /// Creates an article as admin and returns the AdminArticle.
    pub async fn article(&self, admin: &str, body: Value) -> Value {
        let response = self.post("/v1/admin/articles", Some(admin), body).await;
        let status = response.status();
        let answer: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "{answer}");
        answer
    }
}

pub fn token_of(pair: &Value) -> String {
    pair["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Asserts a problem+json answer with this status and code, and returns its body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "status; body: {text}");
    assert_eq!(
        content_type, "application/problem+json",
        "content type; body: {text}"
    );
    let problem: Value = serde_json::from_str(&text).expect("problem is JSON");
    assert_eq!(problem["code"], code, "{problem}");
    assert_eq!(problem["status"], status);
    assert!(problem["title"].is_string() && problem["detail"].is_string());
    problem
}

/// A connection of its own to the app's database, to look at what is stored.
pub async fn database(app: &TestApp) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&app.db_url)
        .await
        .expect("connect to the test database")
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A Unix time as the API writes it (RFC 3339).
pub fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Publishes `count` metered articles, `m0` to `m{count - 1}`.
pub async fn metered(app: &TestApp, admin: &str, count: usize) {
    for i in 0..count {
        app.article(
            admin,
            json!({"title": format!("Metered {i}"), "slug": format!("m{i}"), "body": long_body(4),
                   "section": "s", "access": "metered", "status": "published"}),
        )
        .await;
    }
}

/// A body of `blocks` paragraphs, each a few sentences of non-ASCII text.
pub fn long_body(blocks: usize) -> String {
    (1..=blocks)
        .map(|i| {
            format!(
                "Paragraphe {i} : l’été « chaud » — naïve café, 東京 😀. Encore une phrase ici."
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}
