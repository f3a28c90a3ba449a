//! What makes the store fast: the per-instance caches of articles and session states,
//! the session fence, reads made in place on a SQLite file, the WAL checkpoint thread
//! and the meter writer. The store (`store/`) holds the SQL; the engine decides when to
//! run it. Which of these parts a deployment has depends on its database, and says so
//! in one enum (`Backend`).

pub mod answers;
pub mod cache;
pub mod checkpoint;
mod direct;
pub mod fence;
pub mod meter;
pub mod seats;

use std::sync::Arc;

use crate::store::articles::PublicPage;
use crate::store::{
    ArticleRow, ArticleSummaryRow, Changed, Cursor, PoolSettings, SessionState, Store, StoreError,
};
use answers::ReadyAnswers;
use cache::TtlCache;

/// Session states kept at most (each is small).
const SESSION_CACHE_ENTRIES: usize = 100_000;

/// The bytes each cache may hold: published articles, counting with each its text and
/// the answers made from it (see `cache_weight`); the site's signed-out article pages,
/// a budget of their own so that pages never crowd the API's articles out; and pages of
/// the public list. By default (`PAYWALL_CACHE_MIB`, 42) 24, 16 and 2 MiB: the 2,500
/// newest articles of the bench and their pages, about 6 KiB each (bench/RESULTS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheBudget {
    articles: usize,
    pages: usize,
    lists: usize,
}

impl CacheBudget {
    /// `mib` shared 12:8:1 between articles, pages and lists.
    pub fn of_mib(mib: usize) -> CacheBudget {
        let bytes = mib.saturating_mul(1024 * 1024);
        CacheBudget {
            articles: bytes / 21 * 12,
            pages: bytes / 21 * 8,
            lists: bytes / 21,
        }
    }
}

impl CacheBudget {
    fn total(&self) -> usize {
        self.articles + self.pages + self.lists
    }

    /// This budget shrunk to `bytes` in all, each cache keeping its share.
    fn scaled_to(&self, bytes: usize) -> CacheBudget {
        let total = self.total().max(1);
        let part = |of: usize| (of as u128 * bytes as u128 / total as u128) as usize;
        CacheBudget {
            articles: part(self.articles),
            pages: part(self.pages),
            lists: part(self.lists),
        }
    }

    /// What the caches may hold while `lent` bytes of their budget are lent to
    /// password hashing: the rest, and never less than a sixteenth of the budget.
    pub fn left_with(&self, lent: usize) -> CacheBudget {
        let total = self.total();
        self.scaled_to(total.saturating_sub(lent).max(total / 16))
    }
}

impl Default for CacheBudget {
    fn default() -> Self {
        CacheBudget::of_mib(42)
    }
}

/// Articles turned away by the full article cache that it remembers, so that the next
/// miss of one of them gets in (about the number of articles the budget holds).
const ARTICLE_DOORKEEPER_WINDOW: usize = 4_096;

/// A published article as this instance serves it: the row readers get (without the
/// editor's source), and the answers made from this version of it.
#[derive(Debug)]
pub struct CachedArticle {
    pub row: ArticleRow,
    pub answers: ReadyAnswers,
}

/// The parts of the engine that one kind of database has and the others have not.
pub enum Backend {
    /// SQLite in memory: the pool's one connection is all there is.
    SqliteInMemory,
    /// A SQLite file: reads that miss the cache are made in place (see `direct`); the
    /// checkpoint thread copies the WAL, when it could start (else every writer
    /// checkpoints as it commits).
    SqliteFile {
        direct: direct::DirectReads,
        checkpointer: Option<checkpoint::Checkpointer>,
    },
    /// PostgreSQL, perhaps with several instances: every signed-in request passes the
    /// session fence (see `fence`).
    Postgres { fence: Arc<fence::Fence> },
}

/// A page's name in the page cache (see `Engine::page_key`).
pub struct PageKey(String, u64);

/// A page of the public list as this instance serves it: its rows (`limit + 1` of them,
/// as the store reads them), and the API's answer made of them on first use.
#[derive(Debug)]
pub struct ListedPage {
    pub rows: Vec<ArticleSummaryRow>,
    pub json: std::sync::OnceLock<bytes::Bytes>,
    /// The next scheduled article's time: from then on the page may be missing it.
    until: i64,
}

/// When the next scheduled article comes out, as last read: good for every `now` from
/// `from` until it, while the articles' generation stays `generation`.
#[derive(Clone, Copy)]
struct NextDue {
    generation: u64,
    from: i64,
    due: Option<i64>,
}

#[derive(Clone)]
pub struct Engine {
    store: Store,
    backend: Arc<Backend>,
    sessions: Arc<TtlCache<SessionState>>,
    articles: Arc<TtlCache<Arc<CachedArticle>>>,
    /// The site's pages for signed-out readers, by article version, decision and
    /// language (see `page`); dropped whenever the articles are.
    pages: Arc<TtlCache<bytes::Bytes>>,
    /// Pages of the public list (see `public_page`); dropped whenever the articles are.
    lists: Arc<TtlCache<Arc<ListedPage>>>,
    next_due: Arc<std::sync::Mutex<Option<NextDue>>>,
    /// What this instance knows of sessions' reading seats (see `seats`); dropped
    /// whenever the session states are.
    seats: Arc<seats::Seats>,
    /// The caches' budget, and the bytes of it lent to password hashing now (see
    /// `MemoryLender`).
    budget: CacheBudget,
    lent: Arc<std::sync::Mutex<usize>>,
    /// When freed memory last went back to the system (Unix seconds).
    trimmed: Arc<std::sync::atomic::AtomicI64>,
}

impl Engine {
    /// Connects to the database with the parts its kind needs (the checkpoint thread
    /// starts first, so that the pools' connections know to leave checkpoints to it).
    /// Migrations are the caller's business.
    pub async fn open(
        database_url: &str,
        pools: PoolSettings,
        budget: CacheBudget,
    ) -> Result<Engine, StoreError> {
        // Some only for a `sqlite:` URL that names a file (not a database in memory).
        let file = crate::store::sqlite_file_of(database_url);
        let checkpointer = file.as_ref().and_then(|path| {
            checkpoint::Checkpointer::start(path, checkpoint::RESTART_PAGES)
                .map_err(|error| {
                    tracing::warn!(
                        %error,
                        "the WAL checkpoint thread could not start; writers checkpoint as they commit"
                    )
                })
                .ok()
        });
        let pools = PoolSettings {
            leave_checkpoints: checkpointer.is_some(),
            ..pools
        };
        let store = Store::connect_with(database_url, pools).await?;
        Ok(Engine::over(store, checkpointer, budget))
    }

    /// The engine over a store already connected (its connections checkpoint for
    /// themselves).
    pub fn new(store: Store) -> Engine {
        Engine::over(store, None, CacheBudget::default())
    }

    fn over(
        store: Store,
        checkpointer: Option<checkpoint::Checkpointer>,
        budget: CacheBudget,
    ) -> Engine {
        let sessions = Arc::new(TtlCache::new(SESSION_CACHE_ENTRIES));
        let seats = Arc::new(seats::Seats::default());
        let articles = Arc::new(TtlCache::with_doorkeeper(
            budget.articles,
            ARTICLE_DOORKEEPER_WINDOW,
        ));
        let backend = match (store.backend(), store.sqlite_file()) {
            (crate::store::Backend::Sqlite, None) => Backend::SqliteInMemory,
            (crate::store::Backend::Sqlite, Some(path)) => Backend::SqliteFile {
                direct: direct::DirectReads::new(path),
                checkpointer,
            },
            (crate::store::Backend::Postgres, _) => {
                let (reader, cache, seat_cache) = (store.clone(), sessions.clone(), seats.clone());
                Backend::Postgres {
                    fence: fence::Fence::start(
                        move || {
                            let reader = reader.clone();
                            async move { reader.sessions_version().await }
                        },
                        move || {
                            cache.invalidate();
                            seat_cache.invalidate();
                        },
                    ),
                }
            }
        };
        // Every change this instance writes drops the copies it makes stale, before the
        // write is answered.
        let pages = Arc::new(TtlCache::with_doorkeeper(
            budget.pages,
            ARTICLE_DOORKEEPER_WINDOW,
        ));
        let lists = Arc::new(TtlCache::new(budget.lists));
        let (on_sessions, on_seats, on_articles, on_pages, on_lists) = (
            sessions.clone(),
            seats.clone(),
            articles.clone(),
            pages.clone(),
            lists.clone(),
        );
        store.on_change(move |changed| match changed {
            Changed::Sessions => {
                on_sessions.invalidate();
                on_seats.invalidate();
            }
            Changed::Articles => {
                on_articles.invalidate();
                on_pages.invalidate();
                on_lists.invalidate();
            }
        });
        Engine {
            store,
            backend: Arc::new(backend),
            sessions,
            articles,
            pages,
            lists,
            next_due: Default::default(),
            seats,
            budget,
            lent: Default::default(),
            trimmed: Default::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The flag the checkpoint thread raises for a writer that never pauses (see
    /// `checkpoint`); none when each writer checkpoints as it commits.
    pub fn wal_restart_flag(&self) -> Option<checkpoint::RestartFlag> {
        match &*self.backend {
            Backend::SqliteFile {
                checkpointer: Some(checkpointer),
                ..
            } => Some(checkpointer.catch_up_flag()),
            _ => None,
        }
    }

    fn direct(&self) -> Option<&direct::DirectReads> {
        match &*self.backend {
            Backend::SqliteFile { direct, .. } => Some(direct),
            _ => None,
        }
    }

    /// The session and its account as they stand: from the per-instance cache when it
    /// has a fresh entry (see `cache`), else from the database. With several instances
    /// (PostgreSQL), another may have revoked the session or changed the account a moment
    /// ago, and that must hold at the very next request, not after a poll: the request
    /// first passes the fence (see `fence`), which drops the cache on any such change.
    pub async fn session_state(
        &self,
        session_id: &str,
    ) -> Result<Option<SessionState>, StoreError> {
        if let Backend::Postgres { fence } = &*self.backend {
            self.store.check_reachable()?;
            fence.pass().await?;
        }
        if let Some(state) = self.sessions.get(session_id) {
            return Ok(Some(state));
        }
        let generation = self.sessions.generation();
        let state = self.store.read_session_state(session_id).await?;
        if let Some(state) = &state {
            self.sessions.put(session_id, generation, state.clone(), 1);
        }
        Ok(state)
    }

    /// Whether a session may read gated text now: it holds one of its account's
    /// reading seats, or takes a free one (see `seats`).
    pub async fn seat(
        &self,
        claim: &crate::store::seats::SeatClaim<'_>,
    ) -> Result<crate::paywall::SeatVerdict, StoreError> {
        self.seats.check(&self.store, claim).await
    }

    /// "Continue reading here" (see `seats::Seats::take`).
    pub async fn take_seat(
        &self,
        claim: &crate::store::seats::SeatClaim<'_>,
    ) -> Result<crate::paywall::seats::Claim, StoreError> {
        self.seats.take(&self.store, claim).await
    }

    /// An article by slug for readers, from the per-instance cache when fresh (see
    /// `cache`), shared rather than copied, without `body_source`. Whether it is public
    /// yet is the caller's check, with its own clock.
    pub async fn article(&self, slug: &str) -> Result<Option<Arc<CachedArticle>>, StoreError> {
        if let Some(article) = self.articles.get(slug) {
            crate::metrics::article_cache(true);
            return Ok(Some(article));
        }
        crate::metrics::article_cache(false);
        self.store.check_reachable()?;
        let generation = self.articles.generation();
        let found = match self
            .direct()
            .map(|direct| direct.reader_article(slug, generation))
        {
            Some(Ok(found)) => found,
            Some(Err(error)) => {
                tracing::debug!(%error, "an article read in place failed; reading through the pool");
                self.store.reader_article(slug).await?
            }
            None => self.store.reader_article(slug).await?,
        };
        let Some(row) = found else {
            return Ok(None);
        };
        let weight = cache_weight(&row);
        let article = Arc::new(CachedArticle {
            row,
            answers: ReadyAnswers::default(),
        });
        self.articles.put(slug, generation, article.clone(), weight);
        Ok(Some(article))
    }

    /// A page made before for this version of `article`, `decision` and `language` (the
    /// site's page for signed-out readers), by the name `page_key` gives it.
    pub fn page(&self, key: &PageKey) -> Option<bytes::Bytes> {
        self.pages.get(&key.0)
    }

    /// Names a page: the article's version (the cached copy it was made from: a new
    /// version is a new copy, and every write drops the pages anyway), the decision and
    /// the language; with the page cache's generation when it was named, so that a page
    /// made across a write is not kept.
    pub fn page_key(
        &self,
        article: &Arc<CachedArticle>,
        decision: crate::paywall::Decision,
        language: crate::domain::Language,
    ) -> PageKey {
        let key = format!(
            "{}\u{0}{:p}\u{0}{decision:?}\u{0}{language}",
            article.row.meta.slug,
            Arc::as_ptr(article)
        );
        PageKey(key, self.pages.generation())
    }

    pub fn keep_page(&self, key: PageKey, page: bytes::Bytes) {
        let weight = key.0.len() + page.len();
        self.pages.put(&key.0, key.1, page, weight);
    }

    /// Published articles whose time has come, newest first; `limit + 1` rows are read
    /// so the caller knows whether there is a next page. Pages are kept like articles
    /// (every write drops them), each until the next scheduled article comes out, so a
    /// page is never missing an article whose time has come.
    pub async fn public_page(
        &self,
        section: Option<&str>,
        after: Option<&Cursor>,
        limit: u32,
        now: i64,
    ) -> Result<Arc<ListedPage>, StoreError> {
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{limit}",
            section.map_or_else(String::new, |s| format!("={s}")),
            after.map_or_else(String::new, |c| c.key.to_string()),
            after.map_or("", |c| c.id.as_str()),
        );
        if let Some(page) = self.lists.get(&key).filter(|page| now < page.until) {
            return Ok(page);
        }
        let generation = self.lists.generation();
        let until = self.next_due(generation, now).await?;
        let page = PublicPage {
            now,
            section,
            after_key: after.map(|c| c.key),
            after_id: after.map(|c| c.id.as_str()),
            rows: i64::from(limit) + 1,
        };
        let rows = self.read_public_page(&page).await?;
        let weight = key.len()
            + rows
                .iter()
                .map(|r| {
                    LISTED_ROW_BYTES + r.title.len() + r.standfirst.as_ref().map_or(0, String::len)
                })
                .sum::<usize>();
        let listed = Arc::new(ListedPage {
            rows,
            json: Default::default(),
            until,
        });
        self.lists.put(&key, generation, listed.clone(), weight);
        Ok(listed)
    }

    async fn read_public_page(
        &self,
        page: &PublicPage<'_>,
    ) -> Result<Vec<ArticleSummaryRow>, StoreError> {
        if let Some(direct) = self.direct() {
            match direct.public_articles(page, self.articles.generation()) {
                Ok(rows) => return Ok(rows),
                Err(error) => {
                    tracing::debug!(%error, "a list read in place failed; reading through the pool");
                }
            }
        }
        self.store.check_reachable()?;
        self.store.public_page(page).await
    }

    /// When the next scheduled article comes out after `now` (`i64::MAX` when none is
    /// scheduled): read once per change of the articles, and again when that time
    /// has passed.
    async fn next_due(&self, generation: u64, now: i64) -> Result<i64, StoreError> {
        let known = *self
            .next_due
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = known.filter(|k| {
            k.generation == generation && k.from <= now && k.due.is_none_or(|due| now < due)
        });
        let due = match fresh {
            Some(known) => known.due,
            None => {
                self.store.check_reachable()?;
                let due = self.store.next_publication(now).await?;
                *self
                    .next_due
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(NextDue {
                    generation,
                    from: now,
                    due,
                });
                due
            }
        };
        Ok(due.unwrap_or(i64::MAX))
    }

    /// Polls the cache versions every `cache::POLL` and drops a cache whose version
    /// another writer (another instance, a command-line import) has bumped: their
    /// changes are seen here within that interval. This instance's own bumps are not
    /// another's: its caches took in those changes when it made them, and what was read
    /// since stays (see `Store::foreign_change`). Each poll also ends the read
    /// snapshots that idle in-place readers still hold (see `direct`), and says whether
    /// the database answers (`Store::set_reachable`).
    pub fn start_poller(&self) {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut seen: std::collections::HashMap<String, i64> = Default::default();
            let mut every = tokio::time::interval(cache::POLL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // A connection of its own, so that a busy pool never reads as an outage.
            let mut conn: Option<sqlx::AnyConnection> = None;
            let mut slow = 0u32;
            loop {
                every.tick().await;
                if let Some(direct) = engine.direct() {
                    direct.end_idle();
                }
                let versions = match tokio::time::timeout(
                    crate::store::POLL_TIMEOUT,
                    engine.store.poll_versions(&mut conn),
                )
                .await
                {
                    Ok(read) => {
                        slow = 0;
                        read
                    }
                    // One slow answer may be a busy machine; two in a row is a server
                    // that does not answer (frozen, or cut off without a reset).
                    Err(_) => {
                        slow += 1;
                        conn = None;
                        if slow < 2 {
                            continue;
                        }
                        Err(sqlx::Error::PoolTimedOut)
                    }
                };
                let versions = match versions {
                    Ok(versions) => versions,
                    Err(error) => {
                        conn = None;
                        if engine.store.set_reachable(false) {
                            tracing::warn!(%error, "the database is not answering; cached articles are still served");
                        }
                        // Sessions may be revoked elsewhere meanwhile: checked again once
                        // the database answers. Articles stay: an edit needs the database,
                        // and the versions read once it is back say whether one happened.
                        engine.sessions.invalidate();
                        engine.seats.invalidate();
                        continue;
                    }
                };
                if !engine.store.set_reachable(true) {
                    tracing::info!("the database answers again");
                }
                for (name, version) in versions {
                    let old = seen.insert(name.clone(), version);
                    if engine.store.foreign_change(&name, old, version) {
                        match name.as_str() {
                            "sessions" => {
                                engine.sessions.invalidate();
                                engine.seats.invalidate();
                            }
                            "articles" => {
                                engine.articles.invalidate();
                                engine.pages.invalidate();
                                engine.lists.invalidate();
                            }
                            _ => {}
                        }
                    }
                }
            }
        });
    }
}

/// What a listed row comes to in memory, besides its title and standfirst: its other
/// fields, and its share of the page's JSON.
const LISTED_ROW_BYTES: usize = 640;

/// What gives hashing its memory for as long as it holds it: the caches, which shrink
/// by what is lent (see `Engine`'s implementation), so that a flood of sign-ins adds
/// nothing to the process's memory.
pub trait MemoryLender: Send + Sync {
    /// `bytes` are about to be allocated for hashing.
    fn lend(&self, bytes: usize);
    /// `bytes` lent before are free again.
    fn give_back(&self, bytes: usize);
    /// A hash is done, on a thread that holds lent memory.
    fn hashed(&self) {}
}

/// Password hashing takes its memory from the caches' budget: while a hashing thread
/// holds its Argon2 memory (19 MiB at the configured cost), the caches hold that much
/// less, down to a sixteenth of their budget, so that a flood of sign-ins does not add
/// its memory to theirs. What the caches let go of goes back to the system before the
/// hash allocates (`malloc_trim`), not to the allocator's free lists.
impl MemoryLender for Engine {
    fn lend(&self, bytes: usize) {
        let mut lent = self.lent.lock().unwrap_or_else(|p| p.into_inner());
        *lent = lent.saturating_add(bytes);
        self.fit_caches(*lent);
    }

    fn give_back(&self, bytes: usize) {
        let mut lent = self.lent.lock().unwrap_or_else(|p| p.into_inner());
        *lent = lent.saturating_sub(bytes);
        self.fit_caches(*lent);
    }

    /// While hashing holds memory, the caches' turnover (and the requests') leaves
    /// freed memory in the allocator's heaps, about 9 MiB in a flood: it goes back to
    /// the system once a second.
    fn hashed(&self) {
        let now = crate::store::now_ts();
        let last = self.trimmed.load(std::sync::atomic::Ordering::Relaxed);
        if now > last
            && self
                .trimmed
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            crate::memory::give_freed_heap_back();
        }
    }
}

impl Engine {
    /// The bytes of the caches' budget lent to password hashing now.
    pub fn memory_lent(&self) -> usize {
        *self.lent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the article, page and list caches may hold now, together.
    pub fn cache_budget_now(&self) -> usize {
        self.budget.left_with(self.memory_lent()).total()
    }

    /// Sets the caches' budgets for `lent` bytes lent (called with `lent` locked, so
    /// that budgets are set in the order the loans change).
    fn fit_caches(&self, lent: usize) {
        let left = self.budget.left_with(lent);
        let freed = self.articles.set_budget(left.articles)
            + self.pages.set_budget(left.pages)
            + self.lists.set_budget(left.lists);
        if freed > 0 {
            crate::memory::give_freed_heap_back();
        }
    }
}

/// What a cached article comes to in memory: its text, then the answers readers are
/// sent (kept with it, made on first use): the full text again and the teaser, each
/// with the article's fields around it.
fn cache_weight(article: &ArticleRow) -> usize {
    const FIELDS: usize = 512;
    let teaser = usize::try_from(article.teaser_bytes).unwrap_or(0);
    article.body.len() + (article.body.len() + FIELDS) + (teaser + FIELDS)
}

#[cfg(test)]
mod tests {

    #[test]
    fn what_hashing_borrows_comes_off_every_cache_in_its_share() {
        let budget = CacheBudget::of_mib(42);
        assert_eq!(budget.left_with(0), budget);
        let left = budget.left_with(20 << 20);
        assert_eq!(left.total().div_ceil(1 << 10), (22 << 10) as usize);
        assert!(left.total() <= budget.total() - (20 << 20));
        assert_eq!(left.articles * 8 / 12, left.pages, "12:8 kept");
        // Never below a sixteenth, however much is lent.
        let floor = budget.left_with(usize::MAX);
        let sixteenth = budget.total() / 16;
        assert!(floor.total() <= sixteenth && floor.total() + 3 >= sixteenth);
        assert!(floor.articles > 0 && floor.pages > 0 && floor.lists > 0);
    }
    use super::*;
    use crate::store::ArticleRecord;

    use crate::store::articles::sample_record as record;

    /// A migrated engine on a SQLite file of its own (kept while the directory lives).
    async fn file_engine(name: &str) -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join(name).display());
        let engine = Engine::open(&url, PoolSettings::default(), CacheBudget::default())
            .await
            .unwrap();
        engine.store().migrate().await.unwrap();
        (dir, engine)
    }

    #[tokio::test]
    async fn the_poller_keeps_what_was_read_after_this_instances_own_writes() {
        let (dir, engine) = file_engine("own.db").await;
        engine.start_poller();
        let store = engine.store().clone();
        let write_here = |slug: &'static str| {
            let store = store.clone();
            async move {
                store
                    .insert_articles(&[record(slug, None, None)], 1_790_000_000)
                    .await
                    .unwrap();
            }
        };
        // Another writer (another instance, an import) on the same file.
        let other = rusqlite::Connection::open(dir.path().join("own.db")).unwrap();
        let write_elsewhere = || {
            other
                .execute(
                    "UPDATE cache_versions SET version = version + 1 WHERE name = 'articles'",
                    [],
                )
                .unwrap();
        };
        // Let the poller read the versions once, as a serving instance has.
        tokio::time::sleep(cache::POLL * 2).await;
        write_here("own-write").await;
        // Read (and kept) right after the write, before the poller reads the bumped
        // version: what it holds is what the write wrote.
        assert!(engine.article("own-write").await.unwrap().is_some());
        tokio::time::sleep(cache::POLL * 3).await;
        assert!(
            engine.articles.get("own-write").is_some(),
            "this instance's own write dropped the cache again at the next poll"
        );
        // Another writer's bump drops it.
        write_elsewhere();
        tokio::time::sleep(cache::POLL * 3).await;
        assert!(
            engine.articles.get("own-write").is_none(),
            "another writer's change is seen within the poll"
        );
        // And so does another writer's change made between two of this instance's.
        assert!(engine.article("own-write").await.unwrap().is_some());
        write_here("own-2").await;
        write_elsewhere();
        write_here("own-3").await;
        assert!(engine.article("own-write").await.unwrap().is_some());
        tokio::time::sleep(cache::POLL * 3).await;
        assert!(engine.articles.get("own-write").is_none());
    }

    #[tokio::test]
    async fn articles_read_in_place_are_the_pools_reader_rows() {
        let (_dir, engine) = file_engine("direct.db").await;
        let store = engine.store().clone();
        store
            .insert_articles(
                &[
                    record("with-everything", Some(0.25), Some("A standfirst.")),
                    record("with-nulls", None, None),
                ],
                1_790_000_000,
            )
            .await
            .unwrap();
        let direct = engine.direct().expect("a file has in-place reads");
        for slug in ["with-everything", "with-nulls"] {
            let in_place = direct
                .reader_article(slug, engine.articles.generation())
                .unwrap()
                .unwrap();
            let pooled = store.reader_article(slug).await.unwrap().unwrap();
            assert_eq!(format!("{in_place:?}"), format!("{pooled:?}"));
            assert!(
                in_place.body_source.is_empty(),
                "readers never get the source"
            );
            let edited = store.article_by_slug(slug).await.unwrap().unwrap();
            assert!(!edited.body_source.is_empty());
            assert_eq!(in_place.body, edited.body);
            // The cache serves the same row.
            let cached = engine.article(slug).await.unwrap().unwrap();
            assert_eq!(format!("{:?}", cached.row), format!("{pooled:?}"));
        }
        assert!(direct
            .reader_article("no-such-article", engine.articles.generation())
            .unwrap()
            .is_none());
        assert!(engine.article("no-such-article").await.unwrap().is_none());

        let memory = Engine::open(
            "sqlite::memory:",
            PoolSettings::default(),
            CacheBudget::default(),
        )
        .await
        .unwrap();
        assert!(
            matches!(memory.backend(), Backend::SqliteInMemory) && memory.direct().is_none(),
            "nothing to open beside a database in memory"
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_utf8_is_an_error_in_place_not_text() {
        let (_dir, engine) = file_engine("not-utf8.db").await;
        let store = engine.store().clone();
        store
            .insert_articles(&[record("mangled", None, None)], 1_790_000_000)
            .await
            .unwrap();
        // Written past the service, as by hand: a lone continuation byte.
        let path = store.sqlite_file().unwrap();
        rusqlite::Connection::open(path)
            .unwrap()
            .execute(
                "UPDATE articles SET body = CAST(x'50726580' AS TEXT) WHERE slug = 'mangled'",
                [],
            )
            .unwrap();
        let direct = engine.direct().unwrap();
        let read = direct.reader_article("mangled", engine.articles.generation() + 1);
        assert!(
            matches!(
                read,
                Err(rusqlite::Error::FromSqlConversionFailure(
                    15,
                    rusqlite::types::Type::Text,
                    _
                ))
            ),
            "{read:?}"
        );
    }

    #[tokio::test]
    async fn a_snapshot_held_for_reads_in_place_never_hides_an_article_write() {
        use super::direct::DirectReads;
        use std::time::Duration;
        let (_dir, engine) = file_engine("held.db").await;
        let store = engine.store().clone();
        let path = store.sqlite_file().expect("a file");
        store
            .insert_articles(&[record("edited", None, None)], 1_790_000_000)
            .await
            .unwrap();
        let title = |reads: &DirectReads, generation| {
            reads
                .reader_article("edited", generation)
                .unwrap()
                .unwrap()
                .meta
                .title
        };

        // Transactions held for a minute: only the generation can end one here.
        let reads = DirectReads::holding(path.clone(), Duration::from_secs(60));
        let before = engine.articles.generation();
        assert_eq!(title(&reads, before), "Title of edited");
        assert_eq!(reads.open_transactions(), (1, 1));
        let id = store
            .article_by_slug("edited")
            .await
            .unwrap()
            .unwrap()
            .meta
            .id;
        let mut edit = record("edited", None, None);
        edit.title = "Edited on this instance".into();
        store
            .update_article(&id, &edit, None, 1_790_000_100)
            .await
            .unwrap()
            .unwrap();
        let after = engine.articles.generation();
        assert_ne!(before, after, "an article write moves the generation");
        assert_eq!(title(&reads, after), "Edited on this instance");

        // A write the cache is not told of is not seen through the open snapshot (so it
        // is the generation that made the edit above seen), but is once it is ended.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE articles SET title = 'Edited elsewhere'", [])
            .unwrap();
        assert_eq!(title(&reads, after), "Edited on this instance");
        let short = DirectReads::holding(path, Duration::ZERO);
        assert_eq!(title(&short, after), "Edited elsewhere");
        assert_eq!(short.open_transactions(), (1, 1));
        short.end_idle();
        assert_eq!(
            short.open_transactions(),
            (1, 0),
            "idle snapshots are ended"
        );
        assert_eq!(title(&short, after), "Edited elsewhere");
        assert_eq!(reads.open_transactions(), (1, 1));
        reads.end_idle();
        assert_eq!(
            reads.open_transactions(),
            (1, 1),
            "held for less than a minute"
        );
    }

    #[test]
    fn the_cache_budget_is_shared_twelve_eight_one() {
        let default = CacheBudget::default();
        let mib = 1024 * 1024;
        // 42 MiB: 24, 16 and 2, within a few bytes of rounding.
        assert!(default.articles.abs_diff(24 * mib) < 32);
        assert!(default.pages.abs_diff(16 * mib) < 32);
        assert!(default.lists.abs_diff(2 * mib) < 32);
        let small = CacheBudget::of_mib(3);
        assert!(small.articles + small.pages + small.lists <= 3 * mib);
        assert!(small.lists > 100 * 1024, "room for a few list pages still");
    }

    #[tokio::test]
    async fn public_pages_read_in_place_are_the_pools() {
        let (_dir, engine) = file_engine("pages.db").await;
        let store = engine.store().clone();
        let records: Vec<ArticleRecord> = (0..12)
            .map(|i| {
                let standfirst = (i % 2 == 0).then_some("A standfirst.");
                let mut r = record(&format!("page-{i}"), None, standfirst);
                r.section = if i % 3 == 0 { "culture" } else { "politics" }.into();
                // Two articles at each time: the cursor's tie-break by id is used.
                r.published_at = Some(1_790_000_000 + i64::from(i / 2) * 60);
                if i == 5 {
                    r.status = crate::domain::ArticleStatus::Draft;
                }
                if i == 11 {
                    r.published_at = Some(1_800_000_000);
                }
                r
            })
            .collect();
        store
            .insert_articles(&records, 1_790_000_000)
            .await
            .unwrap();
        /// The page through the pool and in place, which must be the same.
        async fn both(engine: &Engine, page: &PublicPage<'_>) -> Vec<ArticleSummaryRow> {
            let pooled = engine.store().public_page(page).await.unwrap();
            let direct = engine.direct().expect("a file has in-place reads");
            let in_place = direct
                .public_articles(page, engine.articles.generation())
                .unwrap();
            assert_eq!(format!("{in_place:?}"), format!("{pooled:?}"));
            in_place
        }
        let now = 1_790_001_000;
        fn page<'a>(
            now: i64,
            section: Option<&'a str>,
            after: Option<&'a ArticleSummaryRow>,
        ) -> PublicPage<'a> {
            PublicPage {
                now,
                section,
                after_key: after.and_then(|r| r.published_at),
                after_id: after.map(|r| r.id.as_str()),
                rows: 20,
            }
        }
        let first = both(&engine, &page(now, None, None)).await;
        let slugs: Vec<&str> = first.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!(slugs.len(), 10, "neither the draft nor the future one");
        assert!(!slugs.contains(&"page-5") && !slugs.contains(&"page-11"));
        let culture = both(&engine, &page(now, Some("culture"), None)).await;
        assert_eq!(culture.len(), 4);
        // A page after the third row: the same rows as the rest of the first page.
        let rest = both(&engine, &page(now, None, Some(&first[2]))).await;
        assert_eq!(format!("{rest:?}"), format!("{:?}", &first[3..]));
        // And the store's list, which reads in place here, gives the first page.
        let listed = engine.public_page(None, None, 19, now).await.unwrap();
        assert_eq!(format!("{:?}", listed.rows), format!("{first:?}"));
        let direct = engine.direct().unwrap();
        assert_eq!(
            direct.open_transactions(),
            (1, 1),
            "the list was read in place"
        );
    }
}
