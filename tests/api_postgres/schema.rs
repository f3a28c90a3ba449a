//! The two backends' migrations make the same schema: the same tables, columns (name,
//! type, nullability), primary keys and indexes.

use std::collections::BTreeSet;

use sqlx::{Connection, Row};

use crate::helpers::*;

type Columns = BTreeSet<(String, String, String, bool)>;

async fn sqlite_schema(url: &str) -> (Columns, BTreeSet<(String, String)>, BTreeSet<String>) {
    let mut conn = sqlx::sqlite::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut columns = Columns::new();
    let mut keys = BTreeSet::new();
    for table in &tables {
        for row in sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
            .bind(table)
            .fetch_all(&mut conn)
            .await
            .unwrap()
        {
            let name: String = row.get(0);
            let kind: String = row.get(1);
            let not_null: i64 = row.get(2);
            let pk: i64 = row.get(3);
            // SQLite lets a TEXT primary key hold NULL unless told; the service never
            // writes one, and PostgreSQL forbids it: both count as NOT NULL here.
            // A rowid alias must be declared exactly `INTEGER PRIMARY KEY` (the outbox's
            // `seq`, with AUTOINCREMENT); it is a 64-bit integer, PostgreSQL's BIGSERIAL.
            let kind = match kind.to_lowercase() {
                integer if integer == "integer" && pk > 0 => "bigint".to_string(),
                other => other,
            };
            columns.insert((table.clone(), name.clone(), kind, not_null == 0 && pk == 0));
            if pk > 0 {
                keys.insert((table.clone(), name));
            }
        }
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    (columns, keys, indexes.into_iter().collect())
}

async fn postgres_schema(url: &str) -> (Columns, BTreeSet<(String, String)>, BTreeSet<String>) {
    let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
    let mut columns = Columns::new();
    for row in sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    {
        let nullable: String = row.get(3);
        columns.insert((row.get(0), row.get(1), row.get(2), nullable == "YES"));
    }
    let mut keys = BTreeSet::new();
    for row in sqlx::query(
        "SELECT k.table_name::text, k.column_name::text \
         FROM information_schema.table_constraints c \
         JOIN information_schema.key_column_usage k \
           ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema \
         WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = 'public' \
           AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    {
        keys.insert((row.get(0), row.get(1)));
    }
    // Named indexes only: those behind primary keys and UNIQUE columns are implied by
    // the columns compared above, and each database names them its own way.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    (columns, keys, indexes.into_iter().collect())
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("schema.db").display()
    );
    let postgres = TestDb::fresh(dir.path(), "schema");
    for url in [&sqlite_url, &postgres.url] {
        let store = paywall::store::Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        store.close().await;
    }
    let (sqlite_columns, sqlite_keys, sqlite_indexes) = sqlite_schema(&sqlite_url).await;
    let (pg_columns, pg_keys, pg_indexes) = postgres_schema(&postgres.url).await;
    assert!(sqlite_columns.len() > 50, "the schema was read");
    assert_eq!(sqlite_columns, pg_columns);
    assert_eq!(sqlite_keys, pg_keys);
    assert_eq!(sqlite_indexes, pg_indexes);
}

/// `migrate-to` copies every table a migration makes (but the per-deployment cache
/// counters): a table added without it would be left behind by a move.
#[tokio::test]
async fn migrate_to_copies_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("tables.db").display()
    );
    let store = paywall::store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let mut conn = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
    let tables: BTreeSet<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT IN ('_sqlx_migrations', 'cache_versions')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let copied: BTreeSet<String> = paywall::store::copy::TABLES
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(tables, copied);
}

// A database never analyzed plans a list page as a read of every row: the tables have
// statistics once the migrations that made them have run, and every pooled connection
// gives up on a lock and a long statement.
#[tokio::test]
async fn migrations_leave_the_tables_analyzed_and_connections_time_limited() {
    let app = TestApp::spawn().await;
    let mut conn = sqlx::postgres::PgConnection::connect(&app.db_url)
        .await
        .unwrap();
    let analyzed: Vec<(String, bool)> = sqlx::query_as(
        "SELECT relname::text, last_analyze IS NOT NULL FROM pg_stat_user_tables \
         WHERE relname IN ('accounts', 'articles', 'sessions', 'meter_reads')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(analyzed.len(), 4, "{analyzed:?}");
    assert!(analyzed.iter().all(|(_, done)| *done), "{analyzed:?}");
    conn.close().await.unwrap();
    let store = app.store().await;
    let (lock, statement) = store.session_timeouts().await.unwrap();
    assert_eq!((lock.as_str(), statement.as_str()), ("5s", "10s"));
}
