//! Meter charges, batched: many readers' charges go to the database in one write
//! transaction with a handful of statements, so a charged read costs little more than
//! a plain one, and the limit is decided inside the transaction that writes.

use std::collections::{HashMap, HashSet};

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};
use crate::paywall::meter::Meter;

/// One read to count against one or more meters (an unidentified reader's read counts
/// against the address's daily cap and the new meter id at once).
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub meters: Vec<Meter>,
    pub article_id: String,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeOutcome {
    /// Every meter had this article already or room for it: the read may go on.
    pub credit: bool,
    /// A new article was counted (false for a re-read, or when refused).
    pub charged: bool,
    /// Articles counted on each meter after this read, in the request's order.
    pub used: Vec<u32>,
}

/// Rows per multi-row statement (see the note on the import's batch size).
const ROWS_PER_STATEMENT: usize = 50;

impl Store {
    /// Decides and records a batch of charges. With `settle_first`, what a plain read of
    /// the counts settles is answered from it, with no transaction: a re-read of an
    /// article every meter has counted, and a refusal by a meter that is full without it
    /// (counts only grow within a period, so neither answer can change). The rest, the
    /// charges that may write (all of them without `settle_first`), are decided in one
    /// write transaction, in order, each seeing the ones before it; SQLite's write lock
    /// (BEGIN IMMEDIATE) keeps any other writer out between the read of the counts and
    /// the insert; on PostgreSQL a table lock that only other charges wait for does the
    /// same.
    pub async fn charge_meters(
        &self,
        requests: &[ChargeRequest],
        settle_first: bool,
    ) -> Result<Vec<ChargeOutcome>, StoreError> {
        let counted = if settle_first {
            let all: Vec<&ChargeRequest> = requests.iter().collect();
            Some(
                self.counted_by_meter(&mut *self.write.acquire().await?, &all)
                    .await?,
            )
        } else {
            None
        };
        let outcomes = settle(requests, counted.as_ref());
        let pending = unsettled(requests, &outcomes);
        if pending.is_empty() {
            return Ok(merged(outcomes, Vec::new()));
        }
        let mut tx = match self.backend {
            super::Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            super::Backend::Postgres => {
                let mut tx = self.write.begin().await?;
                // Charges of other instances wait for this batch (reads do not): the
                // counts read below stay true until the inserts commit.
                sqlx::query("LOCK TABLE meter_reads IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let mut read = self.counted_by_meter(&mut tx, &pending).await?;
        let (decided, inserts) = decide_batch(&pending, &mut read);
        for chunk in inserts.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=5).map(|k| format!("${}", i * 5 + k)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO meter_reads (meter_key, period_start, article_id, period_end, read_at) VALUES {} \
                 ON CONFLICT DO NOTHING",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for (meter, article, now) in chunk {
                query = query
                    .bind(&meter.key)
                    .bind(meter.period_start)
                    .bind(*article)
                    .bind(meter.period_end)
                    .bind(*now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(merged(outcomes, decided))
    }

    /// What each meter of `requests` has counted this period so far.
    async fn counted_by_meter(
        &self,
        conn: &mut sqlx::AnyConnection,
        requests: &[&ChargeRequest],
    ) -> Result<Counted, StoreError> {
        let mut keys: Vec<(&str, i64)> = requests
            .iter()
            .flat_map(|r| r.meters.iter().map(|m| (m.key.as_str(), m.period_start)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut read = Counted::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(meter_key = ${} AND period_start = ${})",
                        2 * i + 1,
                        2 * i + 2
                    )
                })
                .collect();
            let sql = format!(
                "SELECT meter_key, period_start, article_id FROM meter_reads WHERE {}",
                tuples.join(" OR ")
            );
            let mut query = sqlx::query_as::<_, (String, i64, String)>(&sql);
            for (key, start) in chunk {
                query = query.bind(*key).bind(*start);
            }
            for (key, start, article) in query.fetch_all(&mut *conn).await? {
                read.entry((key, start)).or_default().insert(article);
            }
        }
        Ok(read)
    }

    /// Deletes the counts of periods that have ended. Returns how many rows went.
    pub async fn prune_meter(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM meter_reads WHERE period_end <= $1")
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    /// How many articles a meter has counted in its current period.
    pub async fn meter_used(&self, meter: &Meter) -> Result<u32, StoreError> {
        let used: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM meter_reads WHERE meter_key = $1 AND period_start = $2",
        )
        .bind(&meter.key)
        .bind(meter.period_start)
        .fetch_one(&self.read)
        .await?;
        Ok(u32::try_from(used).unwrap_or(u32::MAX))
    }
}

/// A row to insert: the meter, the article and when it was read.
type Insert<'a> = (&'a Meter, &'a str, i64);

/// The entries each meter (key, period start) has counted.
type Counted = HashMap<(String, i64), HashSet<String>>;

/// The outcome of `request` if the counts in `read` settle it whatever other charges
/// are written meanwhile: every meter has counted this read already (a re-read: credit,
/// nothing to write), or one meter is full without it (refused). None when the read
/// would be a new charge, which only the write transaction may decide.
fn settled(request: &ChargeRequest, read: &Counted) -> Option<ChargeOutcome> {
    let mut counted_everywhere = true;
    for meter in &request.meters {
        let seen = read.get(&(meter.key.clone(), meter.period_start));
        let has = seen.is_some_and(|s| s.contains(meter.entry_for(&request.article_id)));
        if !has {
            counted_everywhere = false;
            if seen.map_or(0, HashSet::len) >= meter.limit as usize {
                return Some(outcome_of(request, read, false, false));
            }
        }
    }
    counted_everywhere.then(|| outcome_of(request, read, true, false))
}

/// Each request's outcome where the counts read before the write transaction settle it
/// (none without such a read).
fn settle(requests: &[ChargeRequest], counted: Option<&Counted>) -> Vec<Option<ChargeOutcome>> {
    match counted {
        Some(counted) => requests.iter().map(|r| settled(r, counted)).collect(),
        None => vec![None; requests.len()],
    }
}

/// The requests `settle` left for the write transaction, in order.
fn unsettled<'a>(
    requests: &'a [ChargeRequest],
    outcomes: &[Option<ChargeOutcome>],
) -> Vec<&'a ChargeRequest> {
    requests
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|(request, _)| request)
        .collect()
}

/// The settled outcomes with the transaction's `decided` ones (for the `unsettled`
/// requests, in their order) put in the gaps.
fn merged(outcomes: Vec<Option<ChargeOutcome>>, decided: Vec<ChargeOutcome>) -> Vec<ChargeOutcome> {
    let mut decided = decided.into_iter();
    outcomes
        .into_iter()
        .filter_map(|outcome| outcome.or_else(|| decided.next()))
        .collect()
}

fn outcome_of(
    request: &ChargeRequest,
    read: &Counted,
    credit: bool,
    charged: bool,
) -> ChargeOutcome {
    let used = request
        .meters
        .iter()
        .map(|m| {
            read.get(&(m.key.clone(), m.period_start))
                .map_or(0, |s| s.len() as u32)
        })
        .collect();
    ChargeOutcome {
        credit,
        charged,
        used,
    }
}

/// Decides a batch of charges in order, each seeing the ones before it, from what each
/// meter had counted (`read`, updated here); returns the outcomes and the rows to add.
fn decide_batch<'a>(
    requests: &[&'a ChargeRequest],
    read: &mut Counted,
) -> (Vec<ChargeOutcome>, Vec<Insert<'a>>) {
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut inserts: Vec<Insert<'a>> = Vec::new();
    for &request in requests {
        let credit = request.meters.iter().all(|meter| {
            let seen = read.get(&(meter.key.clone(), meter.period_start));
            seen.is_some_and(|s| s.contains(meter.entry_for(&request.article_id)))
                || seen.map_or(0, HashSet::len) < meter.limit as usize
        });
        let mut charged = false;
        if credit {
            for meter in &request.meters {
                let entry = meter.entry_for(&request.article_id);
                let seen = read
                    .entry((meter.key.clone(), meter.period_start))
                    .or_default();
                if seen.insert(entry.to_string()) {
                    charged = true;
                    inserts.push((meter, entry, request.now));
                }
            }
        }
        outcomes.push(outcome_of(request, read, credit, charged));
    }
    (outcomes, inserts)
}

/// Why a charge was not written, as a reader's answer needs to know it: the database
/// away (or too slow: 503 `unavailable`), its disk full (503 `storage_full`), or
/// another failure (500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeError {
    Unavailable,
    StorageFull,
    Failed,
}

impl ChargeError {
    fn of_store(error: &StoreError) -> ChargeError {
        match error {
            StoreError::Database(e) if crate::error::storage_full(e) => ChargeError::StorageFull,
            StoreError::Database(e) if crate::error::database_unreachable(e) => {
                ChargeError::Unavailable
            }
            _ => ChargeError::Failed,
        }
    }

    fn of_sqlite(error: &rusqlite::Error) -> ChargeError {
        use rusqlite::ErrorCode;
        match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => ChargeError::StorageFull,
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure,
            ) => ChargeError::Unavailable,
            _ => ChargeError::Failed,
        }
    }
}

/// Answers every charge of a written batch: each its outcome, or all the error.
fn answer(replies: Vec<Reply>, written: Result<Vec<ChargeOutcome>, (ChargeError, String)>) {
    match written {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err((kind, error)) => {
            tracing::error!(%error, ?kind, "meter charges could not be written");
            for reply in replies {
                let _ = reply.send(Err(kind));
            }
        }
    }
}

/// Whether the next batch first tries to settle its charges with a plain read: when this
/// batch had a re-read or a refusal (which that read would have answered without the
/// lock). A batch of nothing but new charges, as under a flood of new readers, goes
/// straight to the write transaction and saves the extra read; after a failed batch,
/// try the read again.
fn next_settles_first<E>(written: &Result<Vec<ChargeOutcome>, E>) -> bool {
    match written {
        Ok(outcomes) => outcomes.iter().any(|o| !o.charged),
        Err(_) => true,
    }
}

/// The most charges decided in one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<ChargeOutcome, ChargeError>>;
type Pending = (ChargeRequest, Reply);

/// Hands charges to one background task that writes them in batches: whatever arrived
/// while the previous batch was being written goes in the next. A charge is answered
/// only after its batch has committed, so an acknowledged charge survives a crash.
#[derive(Clone)]
pub struct MeterWriter {
    sender: mpsc::Sender<Pending>,
    /// The longest a reader waits for a charge (the pool's acquire timeout): past it,
    /// 503 `unavailable`, however long the writer stays stuck behind the database.
    deadline: std::time::Duration,
}

impl MeterWriter {
    /// Starts the writer: on a SQLite file, a thread of its own with its own connection
    /// (see `sqlite_writer`); otherwise a task on the current runtime that writes
    /// through the store.
    pub fn start(store: Store, deadline: std::time::Duration) -> MeterWriter {
        let (sender, mut receiver) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        if let Some(path) = store.sqlite_file() {
            match sqlite_writer(path, store.wal_restart_flag()) {
                Ok(writer) => {
                    std::thread::Builder::new()
                        .name("meter-writer".into())
                        .spawn(move || writer.run(receiver))
                        .expect("start the meter writer thread");
                    return MeterWriter { sender, deadline };
                }
                Err(error) => {
                    tracing::warn!(%error, "the meter writer thread could not open the database; charging through the pool");
                }
            }
        }
        tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
            let mut settle_first = true;
            while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (requests, replies): (Vec<ChargeRequest>, Vec<Reply>) = batch.drain(..).unzip();
                let written = store.charge_meters(&requests, settle_first).await;
                settle_first = next_settles_first(&written);
                answer(
                    replies,
                    written.map_err(|e| (ChargeError::of_store(&e), e.to_string())),
                );
                store.finish_wal_restart().await;
            }
        });
        MeterWriter { sender, deadline }
    }

    /// Charges one read, answered once its batch has committed, or within the deadline
    /// with `Unavailable` (the charge may still be written later: a reader turned away
    /// then has spent a credit without reading, never read without spending one).
    pub async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, ChargeError> {
        let (reply, answer) = oneshot::channel();
        let charged = async {
            self.sender
                .send((request, reply))
                .await
                .map_err(|_| ChargeError::Failed)?;
            answer.await.map_err(|_| ChargeError::Failed)?
        };
        tokio::time::timeout(self.deadline, charged)
            .await
            .unwrap_or(Err(ChargeError::Unavailable))
    }
}

/// The meter writer on a SQLite file: one thread, one connection, each batch one
/// `BEGIN IMMEDIATE` transaction run in place. The pool's write connection hands every
/// statement to a worker thread and back; here a batch costs one wake-up of this thread,
/// which is what a charged read mostly paid for. Charges are answered after the commit.
/// When the store has a checkpoint thread, this connection leaves checkpoints to it and,
/// after answering a batch, does the short catch-up that lets the WAL start over.
struct SqliteWriter {
    conn: rusqlite::Connection,
    wal_restart: Option<super::checkpoint::RestartFlag>,
}

fn sqlite_writer(
    path: std::path::PathBuf,
    wal_restart: Option<super::checkpoint::RestartFlag>,
) -> rusqlite::Result<SqliteWriter> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(super::SQLITE_PRAGMAS)?;
    if wal_restart.is_some() {
        conn.execute_batch(super::NO_AUTOCHECKPOINT)?;
    }
    Ok(SqliteWriter { conn, wal_restart })
}

impl SqliteWriter {
    fn run(mut self, mut receiver: mpsc::Receiver<Pending>) {
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        let mut settle_first = true;
        while let Some(first) = receiver.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let (requests, replies): (Vec<ChargeRequest>, Vec<Reply>) = batch.drain(..).unzip();
            let written = self.charge(&requests, settle_first);
            settle_first = next_settles_first(&written);
            answer(
                replies,
                written.map_err(|e| (ChargeError::of_sqlite(&e), e.to_string())),
            );
            if let Some(flag) = &self.wal_restart {
                super::checkpoint::finish_restart(&self.conn, flag);
            }
        }
    }

    /// As `Store::charge_meters`: what a plain read settles is answered without the
    /// write lock, and only the charges that may write are decided again under it.
    fn charge(
        &mut self,
        requests: &[ChargeRequest],
        settle_first: bool,
    ) -> rusqlite::Result<Vec<ChargeOutcome>> {
        let counted = if settle_first {
            let all: Vec<&ChargeRequest> = requests.iter().collect();
            Some(counted_by_meter(&self.conn, &all)?)
        } else {
            None
        };
        let outcomes = settle(requests, counted.as_ref());
        let pending = unsettled(requests, &outcomes);
        if pending.is_empty() {
            return Ok(merged(outcomes, Vec::new()));
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut read = counted_by_meter(&tx, &pending)?;
        let (decided, inserts) = decide_batch(&pending, &mut read);
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO meter_reads (meter_key, period_start, article_id, period_end, read_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )?;
            for (meter, article, now) in inserts {
                insert.execute(rusqlite::params![
                    meter.key,
                    meter.period_start,
                    article,
                    meter.period_end,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(merged(outcomes, decided))
    }
}

/// What each meter of `requests` has counted this period so far, read on `conn` (in its
/// transaction if it is one).
fn counted_by_meter(
    conn: &rusqlite::Connection,
    requests: &[&ChargeRequest],
) -> rusqlite::Result<Counted> {
    let mut read = Counted::new();
    let mut counted = conn.prepare_cached(
        "SELECT article_id FROM meter_reads WHERE meter_key = ?1 AND period_start = ?2",
    )?;
    for request in requests {
        for meter in &request.meters {
            let key = (meter.key.clone(), meter.period_start);
            if read.contains_key(&key) {
                continue;
            }
            let articles = counted
                .query_map(rusqlite::params![meter.key, meter.period_start], |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<rusqlite::Result<HashSet<String>>>()?;
            read.insert(key, articles);
        }
    }
    Ok(read)
}
