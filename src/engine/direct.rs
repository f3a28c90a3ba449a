//! Article reads that miss the cache, and pages of the public list, on a SQLite file,
//! made on the calling thread.
//!
//! Through the pool, a read is a message to the connection's own thread and a wake-up
//! back: with readers spread over more articles than the cache holds, those hand-offs
//! were most of the server's time (perf: the kernel's task switches), and teasers fell
//! to a tenth of the rate of a cached read. A read by primary key of pages the system
//! already caches takes a few microseconds, so it is made here, in place, on a
//! connection kept for the purpose. Anything unexpected (a busy database during
//! recovery, a failed open) sends the caller back to the pool. The price: a page the
//! system has not cached is read from the disk while this HTTP worker's other requests
//! wait, where the pool would have let them run.
//!
//! Each connection also keeps its read transaction open across reads, for at most
//! `HELD`. Beginning one takes locks in the log's shared memory (mutexes shared by
//! every connection to the file, and `fcntl` calls) and, once anything was written
//! since, such as a meter charge, empties the connection's page cache. With charges
//! and reads spread over an archive together, holding it made charges 7% faster and
//! teasers 12% (bench/RESULTS.md). A held transaction is a snapshot,
//! so it is only used while the article cache's generation is the one read before it
//! began: every article write on this instance bumps the generation after its commit,
//! so a read made after that write always begins a new snapshot and sees it. Writes by
//! other processes are seen within the cache's poll, as they were. The poll also ends
//! the transactions of idle connections (`end_idle`), so none holds the log back.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::articles::{
    ArticleRow, ArticleSummaryRow, PublicPage, PUBLIC_PAGE, READER_ARTICLE_COLUMNS,
};

/// Connections kept between reads; more are opened when reads overlap (one per HTTP
/// worker thread at most, in practice) and closed past this.
const KEPT: usize = 8;
/// How long a read waits for a lock (only WAL recovery takes one against readers)
/// before the caller goes to the pool instead.
const BUSY: Duration = Duration::from_millis(50);
/// How long a connection's read transaction is kept open at most. Short beside the
/// checkpoint thread's second, so the log is copied and started over as before; long
/// beside a read (a few microseconds), so beginning one is rare.
const HELD: Duration = Duration::from_millis(10);

/// A kept connection, and the snapshot it holds open, if any.
struct Reader {
    conn: rusqlite::Connection,
    /// The article cache's generation read before the open transaction began, and when
    /// it began.
    snapshot: Option<(u64, Instant)>,
}

impl Reader {
    /// Ends the open transaction, if any.
    fn end(&mut self) -> rusqlite::Result<()> {
        if self.snapshot.take().is_some() {
            self.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Makes sure the open transaction may serve a read at `generation`: one begun at
    /// another generation, or longer than `held` ago, is ended and a new one begun.
    fn hold(&mut self, generation: u64, held: Duration) -> rusqlite::Result<()> {
        if let Some((begun_at, at)) = self.snapshot {
            if begun_at == generation && at.elapsed() < held {
                return Ok(());
            }
            self.end()?;
        }
        // Deferred: the snapshot is taken by the first read, after `generation` was read.
        self.conn.execute_batch("BEGIN")?;
        self.snapshot = Some((generation, Instant::now()));
        Ok(())
    }
}

pub struct DirectReads {
    path: PathBuf,
    kept: Mutex<Vec<Reader>>,
    /// `HELD`, but for tests.
    held: Duration,
    /// The pool's reader query (`READER_ARTICLE_COLUMNS` by slug): both paths read the
    /// same columns.
    query: String,
}

impl DirectReads {
    pub fn new(path: PathBuf) -> DirectReads {
        DirectReads::holding(path, HELD)
    }

    /// Reads whose transactions are kept open for `held` at most.
    pub(super) fn holding(path: PathBuf, held: Duration) -> DirectReads {
        DirectReads {
            path,
            kept: Mutex::new(Vec::new()),
            held,
            query: format!(
                "SELECT {} FROM articles WHERE slug = ?1",
                *READER_ARTICLE_COLUMNS
            ),
        }
    }

    fn open(&self) -> rusqlite::Result<Reader> {
        let conn = rusqlite::Connection::open(&self.path)?;
        // The system caches the file; this connection's own cache needs to hold little
        // more than the upper levels of the slug index and the table (1 MiB).
        conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -1024;")?;
        conn.busy_timeout(BUSY)?;
        Ok(Reader {
            conn,
            snapshot: None,
        })
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<Reader>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `read` on a kept connection, in a snapshot no older than the article
    /// cache's `generation`, read by the caller before this call.
    fn read<T>(
        &self,
        generation: u64,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let kept = self.kept().pop();
        let mut reader = match kept {
            Some(reader) => reader,
            None => self.open()?,
        };
        let found = reader
            .hold(generation, self.held)
            .and_then(|()| read(&reader.conn));
        // A connection whose read failed is dropped (its transaction with it), not kept.
        if found.is_ok() {
            let mut kept = self.kept();
            if kept.len() < KEPT {
                kept.push(reader);
            }
        }
        found
    }

    /// The article with this slug as readers get it (`body_source` left empty).
    pub fn reader_article(
        &self,
        slug: &str,
        generation: u64,
    ) -> rusqlite::Result<Option<ArticleRow>> {
        self.read(generation, |conn| {
            use rusqlite::OptionalExtension;
            conn.prepare_cached(&self.query)?
                .query_row([slug], ArticleRow::from_sqlite)
                .optional()
        })
    }

    /// A page of public articles (`PUBLIC_PAGE`), as the pool reads it.
    pub fn public_articles(
        &self,
        page: &PublicPage<'_>,
        generation: u64,
    ) -> rusqlite::Result<Vec<ArticleSummaryRow>> {
        self.read(generation, |conn| {
            let mut statement = conn.prepare_cached(&PUBLIC_PAGE)?;
            let rows = statement.query_map(
                rusqlite::params![
                    page.now,
                    page.section,
                    page.after_key,
                    page.after_id,
                    page.rows
                ],
                |row| ArticleSummaryRow::from_sqlite(row).map(|(summary, _)| summary),
            )?;
            rows.collect()
        })
    }

    /// Ends the transactions that idle connections have held for `HELD` or longer (the
    /// cache's poll calls this), so an idle server holds no snapshot of the log.
    pub fn end_idle(&self) {
        let mut kept = self.kept();
        kept.retain_mut(|reader| match reader.snapshot {
            Some((_, at)) if at.elapsed() >= self.held => reader.end().is_ok(),
            _ => true,
        });
    }

    /// Connections kept, and how many hold a transaction open.
    #[cfg(test)]
    pub fn open_transactions(&self) -> (usize, usize) {
        let kept = self.kept();
        let open = kept.iter().filter(|r| !r.conn.is_autocommit()).count();
        (kept.len(), open)
    }
}
