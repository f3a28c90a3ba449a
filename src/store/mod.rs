//! All SQL lives here. Queries use `$1` parameters, `RETURNING` and `ON CONFLICT` so that
//! they carry over to PostgreSQL unchanged. No HTTP types.

pub mod accounts;
pub mod api_keys;
pub mod articles;
pub mod audit;
pub mod backup;
pub mod billing;
mod columns;
pub mod copy;
mod failures;
pub mod gifts;
pub mod meter;
pub mod resets;
pub mod seats;
pub mod sessions;
pub mod webhooks;

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::AnyPool;
use sqlx::{Any, Transaction};

pub use accounts::{
    AccountChanges, AccountFilter, AccountRow, ImportOutcome, NewAccount, Subscription,
};
pub use api_keys::{ApiKeyRow, NewApiKey};
pub use articles::{ArticleFields, ArticleRecord, ArticleRow, ArticleSummaryRow, Cursor};
pub use audit::{AuditEntry, AuditFilter, AuditRow};
pub use failures::FailureCount;
pub use sessions::{RefreshOutcome, SessionState};
pub use webhooks::{
    Attempt, DeliveryRow, DueDelivery, Event, WebhookChanges, WebhookRow, EVENT_TYPES,
};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database behind a `Store`, chosen by the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub use crate::metrics::PoolUse;

/// Connection pool limits (`PAYWALL_DB_MAX_CONNECTIONS`, `PAYWALL_DB_ACQUIRE_TIMEOUT_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections at most: SQLite's read pool, or PostgreSQL's two pools together. 0
    /// picks a default (two per core for SQLite, ten for PostgreSQL).
    pub max_connections: u32,
    /// Whether an engine's checkpoint thread copies the SQLite WAL, so that the pools'
    /// connections leave checkpoints to it.
    pub leave_checkpoints: bool,
    /// How long a request waits for a free connection before it fails with 503; on
    /// PostgreSQL also the longest a statement waits for a lock (`lock_timeout`).
    pub acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout`: no statement runs longer (the request's own
    /// deadline).
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 0,
            leave_checkpoints: false,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a row with this unique value already exists")]
    Conflict,
    #[error("no such row")]
    NotFound,
    #[error("the change would leave no active admin")]
    LastAdmin,
    #[error("the database is not answering")]
    Unreachable,
}

/// A write refused for want of space: SQLite's `SQLITE_FULL` (13), PostgreSQL's
/// `disk_full` (53100).
pub fn storage_full(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code == "13" || code == "53100"),
        _ => false,
    }
}

/// Errors that say the database could not be reached rather than that a query failed.
pub fn database_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        // PostgreSQL shutting down or refusing connections (class 57P and 08), a lock
        // not had within lock_timeout (55P03), a statement past statement_timeout
        // (57014): each passes, so a client may retry.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("57P") || code.starts_with("08") || code == "55P03" || code == "57014"
        }),
        _ => false,
    }
}

/// Maps a unique-constraint violation to `Conflict`, anything else to `Database`.
pub(crate) fn conflict_or(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(error),
    }
}

/// Connection pools. SQLite: many readers, one writer; SQLite allows one writer at a
/// time, and a single write connection queues writers in the process instead of failing
/// with BUSY. PostgreSQL: a pool for writes and a smaller one for reads.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
    /// The file of a SQLite database (none in memory or on PostgreSQL).
    sqlite_file: Option<std::path::PathBuf>,
    /// False while the engine's poller cannot read the database: requests that need it
    /// are answered 503 at once instead of after the acquire timeout.
    reachable: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What the poller connects to on a connection of its own, outside the pools (none
    /// for a database in memory, which only the pool's connection sees).
    poll_url: Option<String>,
    /// Told of every write that changes what a cache may hold (see `Changed`).
    listener: std::sync::Arc<std::sync::OnceLock<Listener>>,
    /// Per version row, the versions this instance's own writes set, until the poller
    /// has read past them (see `foreign_change`).
    own_versions: std::sync::Arc<std::sync::Mutex<OwnVersions>>,
}

type OwnVersions = std::collections::HashMap<String, std::collections::BTreeSet<i64>>;

/// The most own versions kept per row: past it the oldest go, and a poll that finds
/// them counts them as another writer's (a cache dropped for nothing, never one kept).
const OWN_VERSIONS_KEPT: usize = 4_096;

/// What a write changed, for whoever keeps copies (the engine's caches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// What a session may do: revocation, role, status, subscription, password.
    Sessions,
    /// An article.
    Articles,
}

type Listener = Box<dyn Fn(Changed) + Send + Sync>;

/// The statement of a passive checkpoint; its row says whether it was kept from
/// finishing, the pages in the log and the pages copied.
pub const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// How long the cache poller (and `/readyz`) waits for the database before taking it
/// for away: a frozen server answers nothing, and TCP would wait minutes.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(1);

impl Store {
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        Self::connect_with(database_url, PoolSettings::default()).await
    }

    pub async fn connect_with(database_url: &str, pools: PoolSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(database_url).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Configuration(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            ))
        })?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        let sqlite_file = sqlite_file_of(database_url);
        let (read, write) = match backend {
            Backend::Sqlite => {
                let url = sqlite_url(database_url);
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                let own_checkpoints = !pools.leave_checkpoints;
                let write = sqlite_pool(1, pools.acquire_timeout, own_checkpoints)
                    .min_connections(1)
                    .connect(&url)
                    .await?;
                let read = if in_memory {
                    write.clone()
                } else {
                    let readers = match pools.max_connections {
                        0 => cores * 2,
                        n => n,
                    };
                    sqlite_pool(readers, pools.acquire_timeout, own_checkpoints)
                        .connect(&url)
                        .await?
                };
                (read, write)
            }
            Backend::Postgres => {
                let size = match pools.max_connections {
                    0 => 10,
                    n => n.max(2),
                };
                // A third of the connections (at least one) are kept for reads and
                // session checks: writers stuck behind a lock (or a slow disk) cannot
                // take every connection and stop readers and signed-in requests too.
                let readers = (size / 3).max(1);
                let read = postgres_pool(readers, pools).connect(database_url).await?;
                let write = postgres_pool(size - readers, pools)
                    .connect(database_url)
                    .await?;
                (read, write)
            }
        };
        let in_memory = backend == Backend::Sqlite && sqlite_file.is_none();
        Ok(Store {
            reachable: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            poll_url: (!in_memory).then(|| match backend {
                Backend::Sqlite => sqlite_url(database_url),
                Backend::Postgres => database_url.to_string(),
            }),
            backend,
            sqlite_file,
            read,
            write,
            listener: Default::default(),
            own_versions: Default::default(),
        })
    }

    /// Tells `listener` of every change this store writes from now on (once: the engine
    /// that keeps copies of what the store holds).
    pub fn on_change(&self, listener: impl Fn(Changed) + Send + Sync + 'static) {
        if self.listener.set(Box::new(listener)).is_err() {
            tracing::warn!("a second change listener was not installed");
        }
    }

    fn changed(&self, what: Changed) {
        if let Some(listener) = self.listener.get() {
            listener(what);
        }
    }

    /// Records whether the database answers (the engine's poller decides); gives what
    /// it was before.
    pub fn set_reachable(&self, reachable: bool) -> bool {
        self.reachable
            .swap(reachable, std::sync::atomic::Ordering::Relaxed)
    }

    /// The version of the `sessions` cache row (the session fence reads it before each
    /// signed-in request), bounded like the poller's read.
    pub async fn sessions_version(&self) -> Result<i64, StoreError> {
        let read = async {
            sqlx::query_scalar::<_, i64>(
                "SELECT version FROM cache_versions WHERE name = 'sessions'",
            )
            .fetch_one(&mut *self.reader().await?)
            .await
        };
        Ok(tokio::time::timeout(POLL_TIMEOUT, read)
            .await
            .map_err(|_| StoreError::Unreachable)??)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file behind this store, if it is one (not in memory).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.sqlite_file.clone()
    }

    /// A passive WAL checkpoint on the write connection (see `engine::checkpoint`):
    /// whether it was kept from finishing.
    pub async fn passive_checkpoint(&self) -> Result<bool, StoreError> {
        let (busy, _, _) = sqlx::query_as::<_, (i64, i64, i64)>(PASSIVE)
            .fetch_one(&mut *self.writer().await?)
            .await?;
        Ok(busy != 0)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.write).await?,
            Backend::Postgres => {
                use sqlx::Executor;
                let pending = self.pending_migrations().await?;
                // The pool's connections give up on locks and long statements (see
                // `postgres_pool`); a migration may rightly wait for both, so it runs on
                // a connection without those limits, closed afterwards.
                let mut conn = self.write.acquire().await?;
                conn.execute("SET lock_timeout = 0; SET statement_timeout = 0")
                    .await?;
                let migrated = POSTGRES_MIGRATIONS.run(&mut *conn).await;
                // Fresh statistics after the schema changed: a database never analyzed
                // plans a list page as a read of every row.
                if migrated.is_ok() && pending > 0 {
                    conn.execute("ANALYZE").await?;
                }
                conn.close().await?;
                migrated?;
            }
        }
        Ok(())
    }

    /// A write transaction. On PostgreSQL, `lock` names what the transaction must hold
    /// alone until it ends (an advisory lock), where a check and the write that depends
    /// on it must not interleave with another instance's; on SQLite every write
    /// transaction holds the database's write lock from its start (`BEGIN IMMEDIATE`).
    /// The read pool's name in /metrics: `shared` for a SQLite database in memory,
    /// whose one pool serves both.
    fn read_pool_name(&self) -> &'static str {
        if self.backend == Backend::Sqlite && self.sqlite_file.is_none() {
            "shared"
        } else {
            "read"
        }
    }

    fn write_pool_name(&self) -> &'static str {
        if self.backend == Backend::Sqlite && self.sqlite_file.is_none() {
            "shared"
        } else {
            "write"
        }
    }

    /// A connection of the read pool; the wait for it is counted for /metrics.
    pub(crate) async fn reader(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        let started = std::time::Instant::now();
        let conn = self.read.acquire().await;
        crate::metrics::pool_wait(self.read_pool_name(), started.elapsed());
        conn
    }

    /// A connection of the write pool; the wait for it is counted for /metrics.
    pub(crate) async fn writer(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        let started = std::time::Instant::now();
        let conn = self.write.acquire().await;
        crate::metrics::pool_wait(self.write_pool_name(), started.elapsed());
        conn
    }

    /// A transaction on the write pool, begun with `statement` (else BEGIN); the wait
    /// for it, connection and BEGIN together, is counted for /metrics.
    pub(crate) async fn begin_on_write(
        &self,
        statement: Option<&'static str>,
    ) -> Result<Transaction<'static, Any>, sqlx::Error> {
        let started = std::time::Instant::now();
        let begun = match statement {
            Some(statement) => self.write.begin_with(statement).await,
            None => self.write.begin().await,
        };
        crate::metrics::pool_wait(self.write_pool_name(), started.elapsed());
        begun
    }

    pub(crate) async fn begin_write(
        &self,
        lock: Option<&str>,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        self.check_reachable()?;
        let mut tx = match self.backend {
            // Another connection writes too (the meter's writer thread): take the write
            // lock at the start, where SQLite waits for it, rather than at the first
            // write, where it could only fail.
            Backend::Sqlite => {
                match self.begin_on_write(Some("BEGIN IMMEDIATE")).await {
                    // A COMMIT that failed for want of space leaves sqlx's count of open
                    // transactions on the connection behind (SQLite had rolled back, so the
                    // ROLLBACK on drop failed too), and every later BEGIN is refused: that
                    // connection is closed, and the pool opens a fresh one.
                    Err(sqlx::Error::InvalidSavePointStatement | sqlx::Error::BeginFailed) => {
                        tracing::warn!("the write connection was left inside a failed transaction; reopening it");
                        self.write.acquire().await?.close().await?;
                        self.begin_on_write(Some("BEGIN IMMEDIATE")).await?
                    }
                    begun => begun?,
                }
            }
            Backend::Postgres => self.begin_on_write(None).await?,
        };
        if let (Backend::Postgres, Some(name)) = (self.backend, lock) {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)::text")
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// PostgreSQL's `lock_timeout` and `statement_timeout` as a pooled read connection
    /// has them (`check-config --connect` prints them).
    pub async fn session_timeouts(&self) -> Result<(String, String), StoreError> {
        let lock: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
            .fetch_one(&self.read)
            .await?;
        let statement: String = sqlx::query_scalar("SELECT current_setting('statement_timeout')")
            .fetch_one(&self.read)
            .await?;
        Ok((lock, statement))
    }

    /// How many of this build's migrations the database has not applied yet.
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let applied: Vec<i64> = match sqlx::query_scalar::<_, i64>(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE",
        )
        .fetch_all(&self.read)
        .await
        {
            Ok(applied) => applied,
            // A database never migrated has no table yet: every migration is pending.
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(other) => return Err(other.into()),
        };
        Ok(migrator
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .count())
    }

    /// `Unreachable` while the cache poller cannot read the database: a request that
    /// needs it fails now rather than after the pool's acquire timeout.
    pub(crate) fn check_reachable(&self) -> Result<(), StoreError> {
        if self.reachable.load(std::sync::atomic::Ordering::Relaxed) {
            Ok(())
        } else {
            Err(StoreError::Unreachable)
        }
    }

    /// Bytes free for the SQLite file's folder (none on PostgreSQL or in memory).
    pub fn sqlite_free_bytes(&self) -> Option<u64> {
        let dir = self.sqlite_file.as_ref()?.parent()?.to_path_buf();
        let dir = if dir.as_os_str().is_empty() {
            std::path::PathBuf::from(".")
        } else {
            dir
        };
        free_bytes(&dir)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.check_reachable()?;
        let read = async {
            sqlx::query("SELECT 1")
                .execute(&mut *self.reader().await?)
                .await
        };
        tokio::time::timeout(POLL_TIMEOUT, read)
            .await
            .map_err(|_| StoreError::Unreachable)??;
        Ok(())
    }

    /// Called after every write that can change what a session may do (revocation,
    /// role, status, subscription, deletion, password): this instance's cached session
    /// states are dropped now, and the version other instances poll is bumped.
    pub(crate) async fn sessions_changed(&self) -> Result<(), StoreError> {
        self.changed(Changed::Sessions);
        self.bump_version("sessions").await
    }

    /// Called after every article write, like `sessions_changed`.
    pub(crate) async fn articles_changed(&self) -> Result<(), StoreError> {
        self.changed(Changed::Articles);
        self.bump_version("articles").await
    }

    /// Bumps `name`'s version row for the other instances' pollers, and remembers the
    /// version it set, so that this instance's own poller does not drop its caches
    /// again for a change they have already taken in (see `foreign_change`).
    async fn bump_version(&self, name: &str) -> Result<(), StoreError> {
        let set: Option<i64> = sqlx::query_scalar(
            "UPDATE cache_versions SET version = version + 1 WHERE name = $1 RETURNING version",
        )
        .bind(name)
        .fetch_optional(&mut *self.writer().await?)
        .await?;
        if let Some(version) = set {
            let mut own = self.own_versions.lock().unwrap_or_else(|p| p.into_inner());
            let versions = own.entry(name.to_string()).or_default();
            versions.insert(version);
            if versions.len() > OWN_VERSIONS_KEPT {
                versions.pop_first();
            }
        }
        Ok(())
    }

    /// Whether `name`'s version row, read as `new` after `old` (none at the first read),
    /// was moved by a writer other than this instance: some version after `old` up to
    /// `new` is not one this instance's writes set. Own changes were taken in by the
    /// caches when they were made (`Changed`); a read that filled the cache after such
    /// a change holds what the change wrote. Forgets this instance's versions up to
    /// `new`. A version this instance set but had not recorded yet when this is asked
    /// counts as another writer's: a cache dropped for nothing, never one kept stale.
    pub fn foreign_change(&self, name: &str, old: Option<i64>, new: i64) -> bool {
        let mut own = self.own_versions.lock().unwrap_or_else(|p| p.into_inner());
        let versions = own.entry(name.to_string()).or_default();
        let foreign = match old {
            None => false,
            Some(old) if old == new => false,
            Some(old) if new < old => true,
            // `old < new`: every version between is one of this instance's, or not.
            Some(old) => versions.range(old + 1..=new).count() as u64 != new.abs_diff(old),
        };
        *versions = versions.split_off(&new.saturating_add(1));
        foreign
    }

    /// The cache versions, read on the poller's own connection (opened when missing),
    /// or through the pool for a database in memory.
    pub async fn poll_versions(
        &self,
        conn: &mut Option<sqlx::AnyConnection>,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        use sqlx::Connection;
        const SQL: &str = "SELECT name, version FROM cache_versions";
        let Some(url) = &self.poll_url else {
            return sqlx::query_as(SQL).fetch_all(&self.read).await;
        };
        // A connection kept from before may have died with an outage that is already
        // over: it is replaced, and only a fresh connection's failure counts.
        if let Some(kept) = conn.as_mut() {
            match sqlx::query_as(SQL).fetch_all(kept).await {
                Ok(versions) => return Ok(versions),
                Err(_) => *conn = None,
            }
        }
        let fresh = conn.insert(sqlx::AnyConnection::connect(url).await?);
        sqlx::query_as(SQL).fetch_all(fresh).await
    }

    /// Each connection pool once: its name and how many connections are in use, idle,
    /// and allowed at most: a read pool and a write pool, or for a SQLite database in
    /// memory one pool for both, named `shared`.
    pub fn pool_use(&self) -> Vec<PoolUse> {
        let of = |name: &'static str, pool: &AnyPool| {
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            PoolUse {
                name,
                in_use: pool.size().saturating_sub(idle),
                idle,
                max: pool.options().get_max_connections(),
            }
        };
        // The read pool is the write pool's clone for a SQLite database in memory.
        if self.backend == Backend::Sqlite && self.sqlite_file.is_none() {
            vec![of("shared", &self.write)]
        } else {
            vec![of("read", &self.read), of("write", &self.write)]
        }
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs writes the struct it is given for a NUL-terminated path; it is
    // read only when the call succeeded.
    let done = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if done != 0 {
        return None;
    }
    // SAFETY: initialized by the successful call above.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The file a `sqlite:` URL names; none for another scheme or a database in memory.
pub fn sqlite_file_of(database_url: &str) -> Option<std::path::PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:" && !database_url.contains("mode=memory"))
        .then(|| std::path::PathBuf::from(path))
}

/// A SQLite URL that creates its file when missing (`mode=rwc`), unless it names a mode.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Every SQLite connection that writes or checkpoints: WAL mode with `synchronous =
/// NORMAL` (nothing lost on a process crash, kill -9 included; only an OS crash or power
/// cut can lose the last commits), foreign keys on and a busy timeout (SQLite's own
/// defaults through sqlx, which the Any driver keeps).
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
    PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";
/// Added where the checkpoint thread copies the WAL instead of the committing writer.
pub(crate) const NO_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 0;";

/// The pools' SQLite connections (see `SQLITE_PRAGMAS`). `own_checkpoints` off leaves WAL
/// checkpoints to the checkpoint thread.
/// A PostgreSQL pool whose statements give up on a lock after the acquire timeout and
/// on any work after the statement timeout (answered 503 `unavailable`), so that a lock
/// held elsewhere, or a runaway query, holds a connection only that long.
fn postgres_pool(max: u32, pools: PoolSettings) -> AnyPoolOptions {
    let settings = format!(
        "SET lock_timeout = {}; SET statement_timeout = {}",
        pools.acquire_timeout.as_millis(),
        pools.statement_timeout.as_millis()
    );
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(pools.acquire_timeout)
        // A connection the server dropped is found out before it is used.
        .test_before_acquire(true)
        .after_connect(move |conn, _| {
            let settings = settings.clone();
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(settings.as_str()).await?;
                Ok(())
            })
        })
}

fn sqlite_pool(max: u32, acquire_timeout: Duration, own_checkpoints: bool) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(SQLITE_PRAGMAS).await?;
                if !own_checkpoints {
                    conn.execute(NO_AUTOCHECKPOINT).await?;
                }
                Ok(())
            })
        })
}

/// Current Unix time in seconds.
pub fn now_ts() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod own_version_tests {
    use super::*;

    async fn store() -> Store {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// The versions row `name` holds now.
    async fn version(store: &Store, name: &str) -> i64 {
        store
            .poll_versions(&mut None)
            .await
            .unwrap()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
    }

    #[tokio::test]
    async fn only_versions_another_writer_set_are_foreign() {
        let store = store().await;
        let start = version(&store, "articles").await;
        assert!(
            !store.foreign_change("articles", None, start),
            "a first read"
        );
        store.articles_changed().await.unwrap();
        store.articles_changed().await.unwrap();
        let after = version(&store, "articles").await;
        assert_eq!(after, start + 2);
        assert!(
            !store.foreign_change("articles", Some(start), after),
            "both own"
        );
        // Forgotten once seen: the same move read again is not this instance's.
        assert!(store.foreign_change("articles", Some(start), after));
        // One of ours, one of another writer's: foreign.
        store.articles_changed().await.unwrap();
        sqlx::query("UPDATE cache_versions SET version = version + 1 WHERE name = 'articles'")
            .execute(&store.write)
            .await
            .unwrap();
        let mixed = version(&store, "articles").await;
        assert!(store.foreign_change("articles", Some(after), mixed));
        // Rows are told apart, and a version going back (a restored database) is foreign.
        store.sessions_changed().await.unwrap();
        let sessions = version(&store, "sessions").await;
        assert!(!store.foreign_change("sessions", Some(sessions - 1), sessions));
        assert!(store.foreign_change("articles", Some(mixed), mixed - 1));
        assert!(
            !store.foreign_change("articles", Some(mixed), mixed),
            "unchanged"
        );
    }

    #[tokio::test]
    async fn own_versions_kept_are_bounded() {
        let store = store().await;
        let start = version(&store, "articles").await;
        for _ in 0..OWN_VERSIONS_KEPT + 10 {
            store.articles_changed().await.unwrap();
        }
        let now = version(&store, "articles").await;
        assert_eq!(
            store.own_versions.lock().unwrap()["articles"].len(),
            OWN_VERSIONS_KEPT
        );
        // The oldest were let go: counted as another writer's (the cache is dropped).
        assert!(store.foreign_change("articles", Some(start), now));
        assert!(store.own_versions.lock().unwrap()["articles"].is_empty());
    }
}
