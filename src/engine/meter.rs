//! The meter writer: many readers' charges go to the database in one write transaction
//! (see `store::meter`), so a charged read costs little more than a plain one. A charge
//! is answered only after its batch has committed, so an acknowledged charge survives a
//! crash.

use tokio::sync::{mpsc, oneshot};

use super::checkpoint::RestartFlag;
use crate::store::meter::{ChargeOutcome, ChargeRequest, SqliteMeter};
use crate::store::{Store, StoreError};

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
            StoreError::Database(e) if crate::store::storage_full(e) => ChargeError::StorageFull,
            StoreError::Database(e) if crate::store::database_unreachable(e) => {
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
    /// (see `SqliteMeter`); otherwise a task on the current runtime that writes through
    /// the store. `wal_restart` is the checkpoint thread's flag, when there is one.
    pub fn start(
        store: Store,
        wal_restart: Option<RestartFlag>,
        deadline: std::time::Duration,
    ) -> MeterWriter {
        let (sender, mut receiver) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        if let Some(path) = store.sqlite_file() {
            match SqliteMeter::open(path, wal_restart.is_some()) {
                Ok(meter) => {
                    let writer = SqliteWriter {
                        meter,
                        wal_restart: wal_restart.clone(),
                    };
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
                let started = std::time::Instant::now();
                let written = store.charge_meters(&requests, settle_first).await;
                crate::metrics::meter_batch(started.elapsed());
                settle_first = next_settles_first(&written);
                answer(
                    replies,
                    written.map_err(|e| (ChargeError::of_store(&e), e.to_string())),
                );
                if let Some(flag) = wal_restart.as_ref().filter(|flag| flag.take()) {
                    match store.passive_checkpoint().await {
                        Ok(busy) => flag.caught_up(busy),
                        Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
                    }
                }
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

/// The meter writer on a SQLite file: one thread, one connection of its own. When the
/// engine has a checkpoint thread, this connection leaves checkpoints to it and, after
/// answering a batch, does the short catch-up that lets the WAL start over.
struct SqliteWriter {
    meter: SqliteMeter,
    wal_restart: Option<RestartFlag>,
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
            let started = std::time::Instant::now();
            let written = self.meter.charge(&requests, settle_first);
            crate::metrics::meter_batch(started.elapsed());
            settle_first = next_settles_first(&written);
            answer(
                replies,
                written.map_err(|e| (ChargeError::of_sqlite(&e), e.to_string())),
            );
            if let Some(flag) = &self.wal_restart {
                super::checkpoint::finish_restart(self.meter.connection(), flag);
            }
        }
    }
}
