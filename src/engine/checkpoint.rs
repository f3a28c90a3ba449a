//! WAL checkpoints of a SQLite file, on a thread of their own.
//!
//! SQLite's default is for the connection that commits to copy the write-ahead log back
//! into the database file once the log passes 1,000 pages, `fsync` included, before
//! its commit call returns. Under a steady stream of meter charges that kept the meter
//! writer waiting on the disk for over a quarter of its time, and every reader waiting
//! on a charge with it. Here the copying is done by this thread instead, in PASSIVE
//! mode (it never blocks a reader or the writer), and the writers' own automatic
//! checkpoints are turned off.
//!
//! A passive checkpoint alone never lets the log start over while a writer keeps
//! committing: the log can only restart when it has been copied completely at the
//! moment a write transaction begins. So once the log is long (`RESTART_PAGES`), this
//! thread copies pass after pass until one finds little new to copy, then raises a
//! flag; the meter writer, between two batches, copies the few pages written since (its
//! own short passive checkpoint), and its next transaction starts the log over. The
//! pool's writes come with pauses between them, which let the log restart by itself.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How often the thread copies what the log holds. A pass copies each page once, however
/// often it was written since the last: under random meter charges, passes every 100 ms
/// cost 3.1 µs of CPU per charge, every second 1.5 to 2.2 µs (bench/RESULTS.md).
const EVERY: Duration = Duration::from_millis(1000);
/// The log's length, in pages, past which it should start over (128 MiB of 4 KiB
/// pages): each restart costs the writer two `fsync`s, so they should be rare.
pub const RESTART_PAGES: i64 = 32_768;
/// A pass that copied at most this many pages leaves the writer little to catch up on.
const FEW_PAGES: i64 = 1_024;

/// The catch-up flag (see the module's notes): raised by the checkpoint thread, taken by
/// the writer that never pauses, raised again if its catch-up found the thread busy.
#[derive(Clone, Default)]
pub struct RestartFlag(Arc<AtomicBool>);

impl RestartFlag {
    fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a catch-up is due; lowers the flag.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }

    /// After the catch-up checkpoint: one that could not finish (`busy`, the thread
    /// was copying) leaves the catch-up due.
    pub fn caught_up(&self, busy: bool) {
        if busy {
            self.raise();
        }
    }
}

/// The checkpoint thread of one database file. It stops when this is dropped.
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
    catch_up: RestartFlag,
}

impl Checkpointer {
    /// Opens its own connection to the file and starts the thread, which asks for the
    /// log to start over once it passes `restart_pages` (`RESTART_PAGES` in service).
    pub fn start(path: &Path, restart_pages: i64) -> rusqlite::Result<Checkpointer> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(crate::store::SQLITE_PRAGMAS)?;
        conn.execute_batch(crate::store::NO_AUTOCHECKPOINT)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let catch_up = RestartFlag::default();
        let flag = catch_up.clone();
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || run(conn, stopped, flag, restart_pages))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer {
            _stop: stop,
            catch_up,
        })
    }

    /// Raised when the log has been copied and is long enough to start over; the
    /// writer that sees it runs a catch-up between two transactions.
    pub fn catch_up_flag(&self) -> RestartFlag {
        self.catch_up.clone()
    }
}

use crate::store::PASSIVE;

fn passive_checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row(PASSIVE, [], |row| {
        Ok((row.get::<_, i64>(0)? != 0, row.get(1)?, row.get(2)?))
    })
}

/// What a writer does when the flag is up: copies what was written since the thread's
/// last pass, so that its next write transaction starts the log over.
pub fn finish_restart(conn: &rusqlite::Connection, flag: &RestartFlag) {
    if !flag.take() {
        return;
    }
    match passive_checkpoint(conn) {
        Ok((busy, _, _)) => flag.caught_up(busy),
        Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
    }
}

fn run(
    conn: rusqlite::Connection,
    stopped: mpsc::Receiver<()>,
    catch_up: RestartFlag,
    restart_pages: i64,
) {
    // Pages copied as of the previous pass, and whether to start the next one at once.
    let (mut copied_before, mut hurry) = (0, false);
    loop {
        let wait = if hurry { Duration::ZERO } else { EVERY };
        if stopped.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) {
            return;
        }
        hurry = false;
        match passive_checkpoint(&conn) {
            Ok((_, log, copied)) => {
                // After the log started over, everything copied is new.
                let fresh = if copied >= copied_before {
                    copied - copied_before
                } else {
                    copied
                };
                copied_before = copied;
                // Copied to the end of the log as it stood when this pass began: once a
                // pass has had little to copy, what the writer has left is little too.
                if log >= restart_pages && copied == log {
                    if fresh <= FEW_PAGES {
                        catch_up.raise();
                    } else {
                        hurry = true;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's length in pages, read from the WAL index (`-shm`) without touching the
    /// database: `mxFrame` is the header's fifth 32-bit word, in the machine's order.
    fn log_pages(db: &Path) -> u32 {
        let mut shm = db.as_os_str().to_owned();
        shm.push("-shm");
        let header = std::fs::read(shm).unwrap();
        u32::from_ne_bytes(header[16..20].try_into().unwrap())
    }

    fn writer(path: &Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(crate::store::SQLITE_PRAGMAS).unwrap();
        conn.execute_batch(crate::store::NO_AUTOCHECKPOINT).unwrap();
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (k BLOB PRIMARY KEY, v BLOB);")
            .unwrap();
        conn
    }

    /// One transaction of random keys, so that it dirties pages all over the table.
    fn commit_batch(conn: &rusqlite::Connection) {
        let tx = conn.unchecked_transaction().unwrap();
        for _ in 0..50 {
            let key: [u8; 16] = rand::random();
            tx.execute("INSERT INTO t VALUES (?1, zeroblob(200))", [&key[..]])
                .unwrap();
        }
        tx.commit().unwrap();
    }

    /// Where the tests ask for a restart: small, so that they run in seconds.
    const MARK: i64 = 4 * FEW_PAGES;

    /// Writes, running `between` after each commit, until the log has started over
    /// `times` times after passing `MARK` or has grown to `give_up` pages; returns the
    /// restarts seen.
    fn write_until_restarted(
        path: &Path,
        times: u32,
        give_up: u32,
        between: impl Fn(&rusqlite::Connection),
    ) -> u32 {
        let conn = writer(path);
        let (mut restarts, mut last) = (0, 0);
        let started = std::time::Instant::now();
        while restarts < times && last < give_up {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{restarts} restarts in a minute"
            );
            commit_batch(&conn);
            between(&conn);
            let now = log_pages(path);
            if now < last && last >= MARK as u32 {
                restarts += 1;
            }
            last = now;
        }
        restarts
    }

    /// A new database with the test table, in a folder that lives as long as the guard.
    fn fresh_database() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        drop(writer(&path));
        (dir, path)
    }

    #[test]
    fn a_writer_that_never_pauses_gets_its_log_started_over() {
        let (_dir, path) = fresh_database();
        let checkpointer = Checkpointer::start(&path, MARK).unwrap();
        let flag = checkpointer.catch_up_flag();
        // Without the writer's catch-up, the log only grows.
        let restarts = write_until_restarted(&path, 1, 4 * MARK as u32, |_| {});
        assert_eq!(restarts, 0, "the log started over without the catch-up");
        // With it, it starts over again and again.
        let restarts =
            write_until_restarted(&path, 3, u32::MAX, |conn| finish_restart(conn, &flag));
        assert_eq!(restarts, 3);
    }

    #[test]
    fn a_writer_that_pauses_needs_no_help() {
        let (_dir, path) = fresh_database();
        let _checkpointer = Checkpointer::start(&path, MARK).unwrap();
        let restarts = write_until_restarted(&path, 2, u32::MAX, |_| {
            if log_pages_over(&path) {
                std::thread::sleep(EVERY * 3);
            }
        });
        assert_eq!(restarts, 2);
    }

    fn log_pages_over(path: &Path) -> bool {
        log_pages(path) >= MARK as u32
    }
}
