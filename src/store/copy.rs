//! `paywall migrate-to`: copies every table of a SQLite database into an empty
//! PostgreSQL database, in one transaction on each side, so that a move is all or
//! nothing and reads one consistent state of the source.

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Executor, Postgres, Row};

use super::{Backend, Store, StoreError};

/// The tables a move copies, parents before children. `cache_versions` is left out:
/// its counters belong to each deployment (the target starts its own).
pub const TABLES: &[&str] = &[
    "accounts",
    "articles",
    "article_sources",
    "sessions",
    "refresh_tokens",
    "seats",
    "audit_log",
    "password_resets",
    "meter_reads",
    "gifts",
    "failure_counts",
    "plans",
    "plan_prices",
    "stripe_customers",
    "stripe_subscriptions",
    "stripe_events",
    "api_keys",
    "webhooks",
    "webhook_messages",
    "webhook_deliveries",
];

/// Rows per INSERT statement.
const ROWS_PER_STATEMENT: usize = 200;

#[derive(Debug)]
enum Value {
    Text(Option<String>),
    Integer(Option<i64>),
    Real(Option<f64>),
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the source must be a SQLite database (DATABASE_URL=sqlite://...)")]
    SourceNotSqlite,
    #[error("the source database {0} does not exist; check DATABASE_URL")]
    SourceMissing(String),
    #[error("the source is a database in memory; DATABASE_URL must name a SQLite file")]
    SourceInMemory,
    #[error("the target must be a PostgreSQL URL (postgres://...)")]
    TargetNotPostgres,
    #[error("the target already holds {rows} row(s) in {table}; migrate-to copies into an empty database only")]
    TargetNotEmpty { table: String, rows: i64 },
    #[error("column {table}.{column} has type {kind}, which migrate-to does not know")]
    UnknownType {
        table: String,
        column: String,
        kind: String,
    },
    #[error("{table}: {copied} row(s) copied but the source has {expected}")]
    Mismatch {
        table: String,
        copied: i64,
        expected: i64,
    },
}

/// Copies `source` (SQLite) into `target` (PostgreSQL, migrated here if it is not yet,
/// and empty). Returns each table with the number of rows copied.
pub async fn sqlite_to_postgres(
    source: &str,
    target: &str,
) -> Result<Vec<(&'static str, i64)>, CopyError> {
    if Backend::of_url(source) != Some(Backend::Sqlite) {
        return Err(CopyError::SourceNotSqlite);
    }
    if Backend::of_url(target) != Some(Backend::Postgres) {
        return Err(CopyError::TargetNotPostgres);
    }
    // Opening a mistyped path would create an empty database and copy nothing.
    match super::sqlite_file_of(source) {
        Some(path) if path.is_file() => {}
        Some(path) => return Err(CopyError::SourceMissing(path.display().to_string())),
        None => return Err(CopyError::SourceInMemory),
    }
    // Both schemas up to date: the source's so that its columns are the target's.
    for url in [source, target] {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        store.close().await;
    }

    let mut from = SqliteConnection::connect(source).await?;
    let mut to = PgConnection::connect(target).await?;
    for table in TABLES {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut to)
            .await?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty {
                table: table.to_string(),
                rows,
            });
        }
    }

    // One read transaction: every table is read from the same snapshot, even while the
    // source is still being served.
    let mut snapshot = from.begin().await?;
    let mut writing = to.begin().await?;
    let mut copied = Vec::new();
    for table in TABLES {
        let columns: Vec<(String, String)> =
            sqlx::query_as("SELECT name, upper(type) FROM pragma_table_info($1) ORDER BY cid")
                .bind(*table)
                .fetch_all(&mut *snapshot)
                .await?;
        for (column, kind) in &columns {
            if !matches!(
                kind.as_str(),
                "TEXT" | "BIGINT" | "INTEGER" | "DOUBLE PRECISION"
            ) {
                return Err(CopyError::UnknownType {
                    table: table.to_string(),
                    column: column.clone(),
                    kind: kind.clone(),
                });
            }
        }
        let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let rows = sqlx::query(&select).fetch_all(&mut *snapshot).await?;
        let expected = rows.len() as i64;
        let mut values: Vec<Vec<Value>> = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut record = Vec::with_capacity(columns.len());
            for (i, (_, kind)) in columns.iter().enumerate() {
                record.push(match kind.as_str() {
                    "TEXT" => Value::Text(row.try_get(i)?),
                    "BIGINT" | "INTEGER" => Value::Integer(row.try_get(i)?),
                    _ => Value::Real(row.try_get(i)?),
                });
            }
            values.push(record);
        }
        for chunk in values.chunks(ROWS_PER_STATEMENT) {
            let mut n = 0;
            let tuples: Vec<String> = chunk
                .iter()
                .map(|record| {
                    let marks: Vec<String> = record
                        .iter()
                        .map(|_| {
                            n += 1;
                            format!("${n}")
                        })
                        .collect();
                    format!("({})", marks.join(", "))
                })
                .collect();
            let insert = format!(
                "INSERT INTO {table} ({}) VALUES {}",
                names.join(", "),
                tuples.join(", ")
            );
            let mut query = sqlx::query::<Postgres>(&insert);
            for record in chunk {
                for value in record {
                    query = match value {
                        Value::Text(v) => query.bind(v.clone()),
                        Value::Integer(v) => query.bind(*v),
                        Value::Real(v) => query.bind(*v),
                    };
                }
            }
            writing.execute(query).await?;
        }
        let copied_rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *writing)
            .await?;
        if copied_rows != expected {
            return Err(CopyError::Mismatch {
                table: table.to_string(),
                copied: copied_rows,
                expected,
            });
        }
        copied.push((*table, copied_rows));
    }
    // Copied sequence numbers were given explicitly: the target's sequence goes on
    // after the highest, so the next delivery is ordered after every copied one.
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('webhook_deliveries', 'seq'), \
         COALESCE((SELECT MAX(seq) FROM webhook_deliveries), 0) + 1, false)",
    )
    .execute(&mut *writing)
    .await?;
    // Instances already serving the target drop their caches at their next poll.
    sqlx::query("UPDATE cache_versions SET version = version + 1")
        .execute(&mut *writing)
        .await?;
    writing.commit().await?;
    snapshot.rollback().await?;
    Ok(copied)
}
