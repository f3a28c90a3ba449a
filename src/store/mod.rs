//! All SQL lives here. Queries use `$1` parameters, `RETURNING` and `ON CONFLICT` so that
//! they carry over to PostgreSQL unchanged. No HTTP types.

pub mod accounts;
pub mod articles;
pub mod audit;
pub mod backup;
pub mod cache;
pub mod gifts;
pub mod meter;
pub mod resets;
pub mod sessions;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use accounts::{
    AccountChanges, AccountFilter, AccountRow, ImportOutcome, NewAccount, Subscription,
};
pub use articles::{ArticleFields, ArticleRecord, ArticleRow, ArticleSummaryRow, Cursor};
pub use audit::{AuditEntry, AuditFilter, AuditRow};
pub use sessions::{RefreshOutcome, SessionState};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
}

impl From<StoreError> for crate::error::ApiError {
    /// The usual meaning of each outcome; handlers map `Conflict` to the specific code.
    fn from(error: StoreError) -> Self {
        use crate::error::ApiError;
        match error {
            StoreError::NotFound => ApiError::NotFound("there is nothing with this id"),
            StoreError::LastAdmin => {
                ApiError::LastAdmin("this is the last active admin; make another admin first")
            }
            other => ApiError::internal(other),
        }
    }
}

/// Maps a unique-constraint violation to `Conflict`, anything else to `Database`.
pub(crate) fn conflict_or(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(error),
    }
}

/// Connection pools: many readers, one writer. SQLite allows one writer at a time; a
/// single write connection queues writers in the process instead of failing with BUSY.
#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
    sessions: std::sync::Arc<cache::TtlCache<SessionState>>,
    articles: std::sync::Arc<cache::TtlCache<std::sync::Arc<ArticleRow>>>,
}

/// Session states kept at most (each is small).
const SESSION_CACHE_ENTRIES: usize = 100_000;
/// Bytes of published article text kept at most.
const ARTICLE_CACHE_BYTES: usize = 16 * 1024 * 1024;

impl Store {
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode loses nothing on a process crash (kill -9); only an OS
            // crash or power cut can lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = database_url.contains(":memory:") || database_url.contains("mode=memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let read = if in_memory {
            write.clone()
        } else {
            let readers = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
            SqlitePoolOptions::new()
                .max_connections(readers as u32)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?
        };
        Ok(Store {
            read,
            write,
            sessions: std::sync::Arc::new(cache::TtlCache::new(SESSION_CACHE_ENTRIES)),
            articles: std::sync::Arc::new(cache::TtlCache::new(ARTICLE_CACHE_BYTES)),
        })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATIONS.run(&self.write).await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Called after every write that can change what a session may do (revocation,
    /// role, status, subscription, deletion, password): this instance's cached session
    /// states are dropped now, and the version other instances poll is bumped.
    pub(crate) async fn sessions_changed(&self) -> Result<(), StoreError> {
        self.sessions.invalidate();
        self.bump_version("sessions").await
    }

    /// Called after every article write, like `sessions_changed`.
    pub(crate) async fn articles_changed(&self) -> Result<(), StoreError> {
        self.articles.invalidate();
        self.bump_version("articles").await
    }

    async fn bump_version(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE cache_versions SET version = version + 1 WHERE name = $1")
            .bind(name)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Polls the cache versions every `cache::POLL` and drops a cache whose version
    /// another writer (another instance, a command-line import) has bumped: their
    /// changes are seen here within that interval.
    pub fn start_cache_poller(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut seen: std::collections::HashMap<String, i64> = Default::default();
            let mut every = tokio::time::interval(cache::POLL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let versions: Result<Vec<(String, i64)>, sqlx::Error> =
                    sqlx::query_as("SELECT name, version FROM cache_versions")
                        .fetch_all(&store.read)
                        .await;
                let Ok(versions) = versions else {
                    // Unreadable now: drop everything rather than serve what may be stale.
                    store.sessions.invalidate();
                    store.articles.invalidate();
                    continue;
                };
                for (name, version) in versions {
                    if seen
                        .insert(name.clone(), version)
                        .is_some_and(|old| old != version)
                    {
                        match name.as_str() {
                            "sessions" => store.sessions.invalidate(),
                            "articles" => store.articles.invalidate(),
                            _ => {}
                        }
                    }
                }
            }
        });
    }

    /// Open and idle connections of the read and the write pool.
    pub fn pool_use(&self) -> [(&'static str, u32, usize); 2] {
        [
            ("read", self.read.size(), self.read.num_idle()),
            ("write", self.write.size(), self.write.num_idle()),
        ]
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Current Unix time in seconds.
pub fn now_ts() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
