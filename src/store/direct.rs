//! Article reads that miss the cache, on a SQLite file, made on the calling thread.
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

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::articles::{ArticleRow, ArticleSummaryRow, READER_ARTICLE_COLUMNS};

/// Connections kept between reads; more are opened when reads overlap (one per HTTP
/// worker thread at most, in practice) and closed past this.
const KEPT: usize = 8;
/// How long a read waits for a lock (only WAL recovery takes one against readers)
/// before the caller goes to the pool instead.
const BUSY: Duration = Duration::from_millis(50);

pub struct DirectReads {
    path: PathBuf,
    kept: Mutex<Vec<rusqlite::Connection>>,
    /// The pool's reader query (`READER_ARTICLE_COLUMNS` by slug): both paths read the
    /// same columns.
    query: String,
}

impl DirectReads {
    pub fn new(path: PathBuf) -> DirectReads {
        DirectReads {
            path,
            kept: Mutex::new(Vec::new()),
            query: format!("SELECT {READER_ARTICLE_COLUMNS} FROM articles WHERE slug = ?1"),
        }
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path)?;
        // The system caches the file; this connection's own cache needs to hold little
        // more than the upper levels of the slug index and the table (1 MiB).
        conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -1024;")?;
        conn.busy_timeout(BUSY)?;
        Ok(conn)
    }

    /// The article with this slug as readers get it (`body_source` left empty).
    pub fn reader_article(&self, slug: &str) -> rusqlite::Result<Option<ArticleRow>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match kept {
            Some(conn) => conn,
            None => self.open()?,
        };
        let found = read_article(&conn, &self.query, slug);
        // A connection whose read failed is dropped, not kept.
        if found.is_ok() {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            if kept.len() < KEPT {
                kept.push(conn);
            }
        }
        found
    }
}

/// Runs `query` for `slug` and fills the row by position, in the order of
/// `READER_ARTICLE_COLUMNS` (a name lookup scans the columns for each field; a unit
/// test holds this row equal to the pool's, which maps by name).
fn read_article(
    conn: &rusqlite::Connection,
    query: &str,
    slug: &str,
) -> rusqlite::Result<Option<ArticleRow>> {
    use rusqlite::OptionalExtension;
    let mut statement = conn.prepare_cached(query)?;
    statement
        .query_row([slug], |row| {
            Ok(ArticleRow {
                meta: ArticleSummaryRow {
                    id: row.get(0)?,
                    slug: row.get(1)?,
                    title: row.get(2)?,
                    standfirst: row.get(3)?,
                    section: row.get(4)?,
                    author: row.get(5)?,
                    access: row.get(6)?,
                    status: row.get(7)?,
                    word_count: row.get(16)?,
                    published_at: row.get(17)?,
                    created_at: row.get(18)?,
                    updated_at: row.get(19)?,
                },
                teaser_ratio: row.get(8)?,
                teaser_ratio_used: row.get(9)?,
                body_source: row.get(10)?,
                body: row.get(11)?,
                teaser_bytes: row.get(12)?,
                teaser_chars: row.get(13)?,
                total_chars: row.get(14)?,
                percent_left_hundredths: row.get(15)?,
                answers: Default::default(),
            })
        })
        .optional()
}
