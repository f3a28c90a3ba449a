//! Meter charges, batched: many readers' charges go to the database in one write
//! transaction with a handful of statements, so a charged read costs little more than
//! a plain one, and the limit is decided inside the transaction that writes.

use std::collections::{HashMap, HashSet};

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
/// Meter locks taken per statement.
const LOCKS_PER_STATEMENT: usize = 500;

/// PostgreSQL advisory lock keys of the meters `requests` charge, one per meter and
/// period, in ascending order: every batch takes its locks in that order (PostgreSQL
/// takes a statement's `VALUES` rows in the order written), so two batches never
/// wait for each other in a circle. A key is the first 8 bytes of the SHA-256 of the
/// meter's key and period, so that every instance, whatever its build, names a meter
/// alike; bit 62 is set so that no key falls in the 32-bit range of the locks named
/// by `hashtext` (`Store::begin_write`). Two meters that share a key only wait for
/// each other.
fn meter_locks(requests: &[&ChargeRequest]) -> Vec<i64> {
    use sha2::{Digest, Sha256};
    let mut keys: Vec<i64> = requests
        .iter()
        .flat_map(|r| r.meters.iter())
        .map(|meter| {
            let digest = Sha256::new()
                .chain_update(b"meter\0")
                .chain_update(meter.key.as_bytes())
                .chain_update(b"\0")
                .chain_update(meter.period_start.to_be_bytes())
                .finalize();
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            (i64::from_be_bytes(first) & !(1 << 63)) | (1 << 62)
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

impl Store {
    /// Decides and records a batch of charges. With `settle_first`, what a plain read of
    /// the counts settles is answered from it, with no transaction: a re-read of an
    /// article every meter has counted, and a refusal by a meter that is full without it
    /// (counts only grow within a period, so neither answer can change). The rest, the
    /// charges that may write (all of them without `settle_first`), are decided in one
    /// write transaction, in order, each seeing the ones before it; SQLite's write lock
    /// (BEGIN IMMEDIATE) keeps any other writer out between the read of the counts and
    /// the insert; on PostgreSQL, a lock on each meter the batch charges (see
    /// `meter_locks`) does the same for those meters alone: batches of other instances
    /// that charge other meters go on beside it.
    pub async fn charge_meters(
        &self,
        requests: &[ChargeRequest],
        settle_first: bool,
    ) -> Result<Vec<ChargeOutcome>, StoreError> {
        let counted = if settle_first {
            let all: Vec<&ChargeRequest> = requests.iter().collect();
            Some(
                self.counted_by_meter(&mut *self.writer().await?, &all)
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
            super::Backend::Sqlite => self.begin_on_write(Some("BEGIN IMMEDIATE")).await?,
            super::Backend::Postgres => {
                let mut tx = self.begin_on_write(None).await?;
                // Charges of these meters by other instances wait for this batch (reads
                // do not): the counts read below stay true until the inserts commit.
                let locks = meter_locks(&pending);
                for chunk in locks.chunks(LOCKS_PER_STATEMENT) {
                    let values: Vec<String> = (1..=chunk.len())
                        .map(|i| format!("(${i}::bigint)"))
                        .collect();
                    let sql = format!(
                        "SELECT count(pg_advisory_xact_lock(k)) FROM (VALUES {}) AS v(k)",
                        values.join(", ")
                    );
                    let mut query = sqlx::query(&sql);
                    for lock in chunk {
                        query = query.bind(*lock);
                    }
                    query.execute(&mut *tx).await?;
                }
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
            .execute(&mut *self.writer().await?)
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
        .fetch_one(&mut *self.reader().await?)
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

/// The meter's SQLite connection of its own (the engine's meter writer thread runs it):
/// each batch one `BEGIN IMMEDIATE` transaction run in place. The pool's write
/// connection hands every statement to a worker thread and back; here a batch costs one
/// wake-up of the writer's thread, which is what a charged read mostly paid for.
pub struct SqliteMeter {
    conn: rusqlite::Connection,
}

impl SqliteMeter {
    /// Opens the file with the pools' settings; `leave_checkpoints` when a checkpoint
    /// thread copies the WAL.
    pub fn open(
        path: std::path::PathBuf,
        leave_checkpoints: bool,
    ) -> rusqlite::Result<SqliteMeter> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(super::SQLITE_PRAGMAS)?;
        if leave_checkpoints {
            conn.execute_batch(super::NO_AUTOCHECKPOINT)?;
        }
        Ok(SqliteMeter { conn })
    }

    /// The connection, for the checkpoint catch-up between batches.
    pub fn connection(&self) -> &rusqlite::Connection {
        &self.conn
    }

    /// As `Store::charge_meters`: what a plain read settles is answered without the
    /// write lock, and only the charges that may write are decided again under it.
    pub fn charge(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(meters: &[(&str, i64)]) -> ChargeRequest {
        ChargeRequest {
            meters: meters
                .iter()
                .map(|(key, start)| Meter {
                    key: key.to_string(),
                    period_start: *start,
                    period_end: start + 86_400,
                    limit: 3,
                    entry: None,
                })
                .collect(),
            article_id: "a".into(),
            now: *meters.first().map_or(&0, |(_, start)| start),
        }
    }

    #[test]
    fn meter_locks_name_each_meter_and_period_once_in_ascending_order() {
        let a = charge(&[("m:one", 100), ("ip:day", 100)]);
        let b = charge(&[("m:one", 100)]);
        let c = charge(&[("m:one", 200)]);
        let locks = meter_locks(&[&a, &b, &c]);
        assert_eq!(locks.len(), 3, "m:one twice in one period is one lock");
        assert!(locks.windows(2).all(|w| w[0] < w[1]));
        // Outside the range of the locks that `hashtext` names (32 bits, signed).
        assert!(locks.iter().all(|k| *k >= 1 << 62));
        // The same meter is the same key in any batch, and so on any instance.
        assert_eq!(meter_locks(&[&b]), meter_locks(&[&b, &b]));
        assert!(locks.contains(&meter_locks(&[&b])[0]));
        assert_ne!(meter_locks(&[&b]), meter_locks(&[&c]));
    }
}
