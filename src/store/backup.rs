//! Online backups of a SQLite database, and restoring one.

use std::path::Path;

use super::{Store, StoreError};

impl Store {
    /// Writes a consistent copy of the database to `target` while it serves:
    /// `VACUUM INTO` reads one snapshot, so the copy holds every transaction committed
    /// before it began and none of the ones after. Refuses to overwrite a file.
    pub async fn backup_to(&self, target: &str) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&mut *self.reader().await?)
            .await?;
        Ok(())
    }
}

/// Checks a database file with SQLite's integrity check.
pub async fn integrity_check(path: &Path) -> Result<String, StoreError> {
    use sqlx::ConnectOptions;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let mut conn = options.connect().await?;
    Ok(sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?)
}

/// The lock a serving process holds on `DB.lock` beside its database, so that a
/// restore can tell the database is in use.
pub fn serving_lock(db: &Path) -> std::io::Result<std::fs::File> {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(db.with_file_name(name))
}

/// Writes a consistent copy of the SQLite file at `from` (its write-ahead log
/// included) to `to`, which must not exist: for the copy `restore` keeps of the
/// database it replaces.
pub async fn copy_file_database(from: &Path, to: &Path) -> Result<(), StoreError> {
    use sqlx::ConnectOptions;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(from);
    let mut conn = options.connect().await?;
    sqlx::query("VACUUM INTO $1")
        .bind(to.display().to_string())
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// The file beside a database that holds its generated signing secret
/// (`DB.jwt-secret`), which also keys meter ids and gift links.
pub fn secret_file_of(db: &Path) -> std::path::PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".jwt-secret");
    db.with_file_name(name)
}
