use base64::Engine;

use super::audit::{record, AuditEntry};
use super::columns::{Binder, FromSqlite, Param};
use super::webhooks::{emit, Event};
use super::{conflict_or, Store, StoreError};
use crate::domain::{AccessLevel, ArticleStatus};
use crate::paywall::teaser::PreparedBody;
use crate::paywall::ArticleText;

/// What an editor writes about an article, apart from its body.
pub struct ArticleFields {
    pub slug: String,
    pub title: String,
    pub standfirst: Option<String>,
    pub section: String,
    pub author: Option<String>,
    pub access: AccessLevel,
    pub status: ArticleStatus,
    /// The ratio the editor chose, or None for the configured default.
    pub teaser_ratio: Option<f64>,
    pub published_at: Option<i64>,
}

impl ArticleRecord {
    /// The row to store: the editor's fields and the body as `teaser::prepare` measured
    /// it with `ratio_used`.
    pub fn new(fields: ArticleFields, ratio_used: f64, body: PreparedBody) -> Self {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        ArticleRecord {
            slug: fields.slug,
            title: fields.title,
            standfirst: fields.standfirst,
            section: fields.section,
            author: fields.author,
            access: fields.access,
            status: fields.status,
            teaser_ratio: fields.teaser_ratio,
            teaser_ratio_used: ratio_used,
            teaser_bytes: n(body.teaser_bytes),
            teaser_chars: n(body.teaser_chars),
            total_chars: n(body.total_chars),
            percent_left_hundredths: i64::from(body.percent_left_hundredths),
            word_count: n(body.word_count),
            body_source: body.source,
            body: body.text,
            published_at: fields.published_at,
            external_id: None,
            canonical_url: None,
        }
    }
}

/// The article row, described once: from this come the rows (`ArticleSummaryRow`,
/// `ArticleRow`), what is written (`ArticleRecord`), the column lists of every query,
/// the parameters and placeholders of every INSERT and UPDATE, the pool's mapping by
/// name (sqlx's `FromRow`) and the in-place reads' mapping by position. A new column is
/// a line here (and in `written` when editors write it) and a migration.
macro_rules! article_row {
    (
        summary { $($(#[$sm:meta])* $s:ident: $sty:ty),+ $(,)? }
        text { $($(#[$tm:meta])* $t:ident: $tty:ty),+ $(,)? }
        written { $($w:ident: $wty:ty),+ $(,)? }
    ) => {
        /// A list row: no body columns are even read.
        #[derive(Debug, Clone, sqlx::FromRow)]
        pub struct ArticleSummaryRow {
            $($(#[$sm])* pub $s: $sty,)+
        }

        /// A whole article: its list fields plus the body and the stored teaser cut.
        #[derive(Debug, Clone, sqlx::FromRow)]
        pub struct ArticleRow {
            #[sqlx(flatten)]
            pub meta: ArticleSummaryRow,
            $($(#[$tm])* pub $t: $tty,)+
        }

        /// Everything written for an article; the teaser cut is computed before it gets
        /// here. The editor's source goes to `article_sources` (see `write_sources`).
        pub struct ArticleRecord {
            $(pub $w: $wty,)+
            pub body_source: String,
            /// Where an imported article came from: its id and address there.
            pub external_id: Option<String>,
            pub canonical_url: Option<String>,
        }

        /// The columns of `ArticleSummaryRow`, in its order.
        const SUMMARY_NAMES: &[&str] = &[$(stringify!($s)),+];
        /// The rest of `ArticleRow`'s columns, in its order.
        const TEXT_NAMES: &[&str] = &[$(stringify!($t)),+];
        /// The columns an editor's write sets, in the order `ArticleRecord::bind_to`
        /// binds them.
        const WRITTEN_NAMES: &[&str] = &[$(stringify!($w)),+];

        impl ArticleRecord {
            /// Binds the written columns, in `WRITTEN_NAMES` order.
            fn bind_to<'q, B: Binder<'q>>(&'q self, statement: B) -> B {
                $(let statement = Param::bind_to(&self.$w, statement);)+
                statement
            }

            /// The written columns' placeholders, numbered from `first`.
            #[allow(unused_assignments)]
            fn placeholders(first: usize) -> Vec<String> {
                let mut n = first;
                vec![$({
                    let placeholder = <$wty as Param>::placeholder(n);
                    n += 1;
                    placeholder
                }),+]
            }
        }

        impl ArticleSummaryRow {
            /// The row's first columns by position, in `SUMMARY_NAMES` order (a name
            /// lookup scans the columns for each field), and the next column's index.
            #[allow(unused_assignments)]
            pub fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Self, usize)> {
                let mut at = 0;
                let summary = ArticleSummaryRow {
                    $($s: {
                        let value = FromSqlite::read(row, at)?;
                        at += 1;
                        value
                    },)+
                };
                Ok((summary, at))
            }
        }

        impl ArticleRow {
            /// A row of `READER_ARTICLE_COLUMNS` (or `ARTICLE_COLUMNS`) by position.
            #[allow(unused_assignments)]
            pub fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let (meta, mut at) = ArticleSummaryRow::from_sqlite(row)?;
                Ok(ArticleRow {
                    meta,
                    $($t: {
                        let value = FromSqlite::read(row, at)?;
                        at += 1;
                        value
                    },)+
                })
            }
        }
    };
}

article_row! {
    summary {
        id: String,
        slug: String,
        title: String,
        standfirst: Option<String>,
        section: String,
        author: Option<String>,
        #[sqlx(try_from = "String")]
        access: AccessLevel,
        #[sqlx(try_from = "String")]
        status: ArticleStatus,
        word_count: i64,
        published_at: Option<i64>,
        created_at: i64,
        updated_at: i64,
    }
    text {
        teaser_ratio: Option<f64>,
        teaser_ratio_used: f64,
        /// Empty where readers get the row: they never get the editor's source.
        body_source: String,
        body: String,
        teaser_bytes: i64,
        teaser_chars: i64,
        total_chars: i64,
        percent_left_hundredths: i64,
        /// Where an imported article came from (in `article_sources`; None for readers).
        external_id: Option<String>,
        canonical_url: Option<String>,
    }
    written {
        slug: String,
        title: String,
        standfirst: Option<String>,
        section: String,
        author: Option<String>,
        access: AccessLevel,
        status: ArticleStatus,
        teaser_ratio: Option<f64>,
        teaser_ratio_used: f64,
        body: String,
        teaser_bytes: i64,
        teaser_chars: i64,
        total_chars: i64,
        percent_left_hundredths: i64,
        word_count: i64,
        published_at: Option<i64>,
    }
}

/// The columns of `ArticleSummaryRow`.
static SUMMARY_COLUMNS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| SUMMARY_NAMES.join(", "));

/// An article as editors get it: read with `article_sources` joined for the source.
static ARTICLE_COLUMNS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| [SUMMARY_NAMES, TEXT_NAMES].concat().join(", "));

/// `ARTICLE_COLUMNS` without the editor's source, for readers (through the pool, and in
/// place: see `engine::direct`), the summary's columns first.
pub static READER_ARTICLE_COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    SUMMARY_NAMES
        .iter()
        .chain(TEXT_NAMES)
        .map(|&name| match name {
            "body_source" => "'' AS body_source",
            "external_id" => "NULL AS external_id",
            "canonical_url" => "NULL AS canonical_url",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(", ")
});

/// Values per lookup statement of an import.
const IMPORT_LOOKUP: usize = 200;

/// Parameters per article in an INSERT: the id, the written columns, the time.
const INSERT_PARAMS: usize = WRITTEN_NAMES.len() + 2;

/// The INSERT of `rows` articles, each with `INSERT_PARAMS` parameters: `$1` of a row is
/// its id, then its written columns, then the time (its creation and its update).
fn insert_sql(rows: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|r| {
            let base = r * INSERT_PARAMS;
            let now = format!("${}", base + INSERT_PARAMS);
            format!(
                "(${}, {}, {now}, {now})",
                base + 1,
                ArticleRecord::placeholders(base + 2).join(", ")
            )
        })
        .collect();
    format!(
        "INSERT INTO articles (id, {}, created_at, updated_at) VALUES {}",
        WRITTEN_NAMES.join(", "),
        tuples.join(", ")
    )
}

/// `insert_sql` that updates the rows whose id exists instead (their creation time
/// kept): an import's creations and updates in one statement.
fn upsert_sql(rows: usize) -> String {
    let set: Vec<String> = WRITTEN_NAMES
        .iter()
        .map(|name| format!("{name} = excluded.{name}"))
        .collect();
    format!(
        "{} ON CONFLICT (id) DO UPDATE SET {}, updated_at = excluded.updated_at",
        insert_sql(rows),
        set.join(", ")
    )
}

/// The UPDATE of one article: `$1` its id, then its written columns, then the time.
fn update_sql() -> String {
    let set: Vec<String> = WRITTEN_NAMES
        .iter()
        .zip(ArticleRecord::placeholders(2))
        .map(|(name, placeholder)| format!("{name} = {placeholder}"))
        .collect();
    format!(
        "UPDATE articles SET {}, updated_at = ${} WHERE id = $1",
        set.join(", "),
        INSERT_PARAMS
    )
}

impl ArticleText for ArticleRow {
    fn full_text(&self) -> &str {
        &self.body
    }
    fn teaser_bytes(&self) -> usize {
        usize::try_from(self.teaser_bytes).unwrap_or(0)
    }
    fn percent_left_hundredths(&self) -> u32 {
        u32::try_from(self.percent_left_hundredths).unwrap_or(10_000)
    }
}

impl ArticleRow {
    /// Visible on public routes: published, and its publication time has come.
    pub fn is_public(&self, now: i64) -> bool {
        self.meta.status == ArticleStatus::Published
            && self.meta.published_at.is_some_and(|at| at <= now)
    }
}

/// A keyset position: the sort key and id of the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{}", self.key, self.id))
    }

    pub fn decode(raw: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (key, id) = text.split_once('|')?;
        // A UUID, or a prefixed one as API keys and webhooks have (`key_0193...`).
        let id = match id.split_once('_') {
            Some((kind, rest))
                if !kind.is_empty()
                    && kind.bytes().all(|b| b.is_ascii_lowercase())
                    && rest.len() == 32
                    && uuid::Uuid::try_parse(rest).is_ok() =>
            {
                id.to_string()
            }
            _ => uuid::Uuid::parse_str(id).ok()?.to_string(),
        };
        Some(Cursor {
            key: key.parse().ok()?,
            id,
        })
    }
}

/// A page of public articles, newest first: `$1` now, `$2` the section or NULL, `$3` and
/// `$4` the cursor's key and id or NULL, `$5` the rows to read. Through the pool and in
/// place (see `direct`) alike.
pub static PUBLIC_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {} FROM articles \
         WHERE status = 'published' AND published_at <= $1 \
         AND ($2 IS NULL OR section = $2) \
         AND ($3 IS NULL OR published_at < $3 OR (published_at = $3 AND id < $4)) \
         ORDER BY published_at DESC, id DESC LIMIT $5",
        *SUMMARY_COLUMNS
    )
});

/// The parameters of `PUBLIC_PAGE`, in its order.
pub struct PublicPage<'a> {
    pub now: i64,
    pub section: Option<&'a str>,
    pub after_key: Option<i64>,
    pub after_id: Option<&'a str>,
    pub rows: i64,
}

/// Writes (or replaces) the editor's source of each `(article id, record)`, and where
/// it came from (an import's; an edit without them keeps those already stored).
async fn write_sources(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sources: &[(&str, &ArticleRecord)],
) -> Result<(), StoreError> {
    if sources.is_empty() {
        return Ok(());
    }
    let tuples: Vec<String> = (0..sources.len())
        .map(|r| {
            format!(
                "(${}, ${}, ${}, ${})",
                4 * r + 1,
                4 * r + 2,
                4 * r + 3,
                4 * r + 4
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO article_sources (article_id, body_source, external_id, canonical_url) VALUES {} \
         ON CONFLICT (article_id) DO UPDATE SET body_source = excluded.body_source, \
         external_id = COALESCE(excluded.external_id, article_sources.external_id), \
         canonical_url = COALESCE(excluded.canonical_url, article_sources.canonical_url)",
        tuples.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (id, record) in sources {
        query = query
            .bind(*id)
            .bind(record.body_source.as_str())
            .bind(record.external_id.as_deref())
            .bind(record.canonical_url.as_deref());
    }
    query.execute(&mut **tx).await.map_err(conflict_or)?;
    Ok(())
}

/// Whether the article `id` is published now (before a write changes it).
async fn was_published(conn: &mut sqlx::AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM articles WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(status.as_deref() == Some("published"))
}

impl Store {
    /// Runs an INSERT or UPDATE whose parameters are `$1` the id, then the written
    /// columns (`ArticleRecord::bind_to`), then the time of the write, returning
    /// `READER_ARTICLE_COLUMNS`; writes the source beside it, and the audit entry, in the
    /// same transaction.
    async fn write_article(
        &self,
        sql: &str,
        id: &str,
        article: &ArticleRecord,
        audit: Option<&AuditEntry>,
        now: i64,
    ) -> Result<Option<ArticleRow>, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let before = was_published(&mut tx, id).await?;
        let mut row = article
            .bind_to(sqlx::query_as::<_, ArticleRow>(sql).bind(id))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(conflict_or)?;
        if let Some(row) = &mut row {
            write_sources(&mut tx, &[(id, article)]).await?;
            let (external_id, canonical_url): (Option<String>, Option<String>) = sqlx::query_as(
                "SELECT external_id, canonical_url FROM article_sources WHERE article_id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            row.body_source = article.body_source.clone();
            row.external_id = external_id;
            row.canonical_url = canonical_url;
            if let Some(event) = Event::article_change(before, row) {
                emit(&mut tx, &[event], now).await?;
            }
        }
        if let (Some(entry), Some(_)) = (audit, &row) {
            let entry = entry.about(id).details(serde_json::json!({
                "slug": article.slug,
                "status": article.status,
                "access": article.access,
            }));
            record(&mut tx, &entry, now).await?;
        }
        tx.commit().await?;
        self.articles_changed().await?;
        Ok(row)
    }

    /// Adds many articles in one transaction, with multi-row statements (for seeding
    /// large databases and imports; no audit entries). `Conflict` when a slug is taken,
    /// and then none is added.
    pub async fn insert_articles(
        &self,
        articles: &[ArticleRecord],
        now: i64,
    ) -> Result<(), StoreError> {
        /// Rows per statement (`INSERT_PARAMS` parameters each).
        const ROWS: usize = 40;
        let mut tx = self.begin_write(None).await?;
        for chunk in articles.chunks(ROWS) {
            let sql = insert_sql(chunk.len());
            let ids: Vec<String> = chunk
                .iter()
                .map(|_| uuid::Uuid::now_v7().to_string())
                .collect();
            let mut query = sqlx::query(&sql);
            for (id, article) in ids.iter().zip(chunk) {
                query = article.bind_to(query.bind(id.as_str())).bind(now);
            }
            query.execute(&mut *tx).await.map_err(conflict_or)?;
            let sources: Vec<(&str, &ArticleRecord)> =
                ids.iter().map(String::as_str).zip(chunk).collect();
            write_sources(&mut tx, &sources).await?;
        }
        tx.commit().await?;
        self.articles_changed().await?;
        Ok(())
    }

    /// `Conflict` when the slug is taken.
    pub async fn insert_article(
        &self,
        article: &ArticleRecord,
        audit: Option<&AuditEntry>,
        now: i64,
    ) -> Result<ArticleRow, StoreError> {
        let sql = format!("{} RETURNING {}", insert_sql(1), *READER_ARTICLE_COLUMNS);
        let id = uuid::Uuid::now_v7().to_string();
        self.write_article(&sql, &id, article, audit, now)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Replaces every written field of the article `id`. `Conflict` when the new slug is
    /// taken; `None` when the article is gone.
    pub async fn update_article(
        &self,
        id: &str,
        article: &ArticleRecord,
        audit: Option<&AuditEntry>,
        now: i64,
    ) -> Result<Option<ArticleRow>, StoreError> {
        let sql = format!("{} RETURNING {}", update_sql(), *READER_ARTICLE_COLUMNS);
        self.write_article(&sql, id, article, audit, now).await
    }

    /// The articles imported under these external ids, as editors get them.
    pub async fn articles_by_external_ids(
        &self,
        external_ids: &[String],
    ) -> Result<Vec<ArticleRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in external_ids.chunks(IMPORT_LOOKUP) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {} FROM articles \
                 JOIN article_sources ON article_sources.article_id = articles.id \
                 WHERE article_sources.external_id IN ({})",
                *ARTICLE_COLUMNS,
                marks.join(", ")
            );
            let mut query = sqlx::query_as::<_, ArticleRow>(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            rows.extend(query.fetch_all(&mut *self.reader().await?).await?);
        }
        Ok(rows)
    }

    /// Which of `slugs` are taken, and by which article id.
    pub async fn slug_owners(
        &self,
        slugs: &[String],
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut owners = std::collections::HashMap::new();
        for chunk in slugs.chunks(IMPORT_LOOKUP) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT slug, id FROM articles WHERE slug IN ({})",
                marks.join(", ")
            );
            let mut query = sqlx::query_as::<_, (String, String)>(&sql);
            for slug in chunk {
                query = query.bind(slug);
            }
            owners.extend(query.fetch_all(&mut *self.reader().await?).await?);
        }
        Ok(owners)
    }

    /// Writes a batch of imported articles in one transaction: `Some(id)` updates that
    /// article, `None` creates one; each write's webhook event commits with it. The
    /// batch goes in with multi-row upserts (the caller has checked its slugs and
    /// external ids); if one of them was taken meanwhile, the batch is written again
    /// item by item, each in a savepoint of its own, so that only that item is refused.
    pub async fn import_articles(
        &self,
        items: &[(Option<String>, ArticleRecord)],
        now: i64,
    ) -> Result<Vec<Result<String, StoreError>>, StoreError> {
        match self.import_together(items, now).await {
            Ok(ids) => Ok(ids.into_iter().map(Ok).collect()),
            Err(StoreError::Conflict) => self.import_one_by_one(items, now).await,
            Err(other) => Err(other),
        }
    }

    /// The batch in a few statements: which articles were published before, the rows
    /// and their sources in multi-row upserts, then the events (read back only when an
    /// endpoint exists). sqlx runs each SQLite statement on its own thread, so a
    /// statement per item cost a thread hand-off per item (bench/RESULTS.md).
    async fn import_together(
        &self,
        items: &[(Option<String>, ArticleRecord)],
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        /// Rows per upsert (`INSERT_PARAMS` parameters each).
        const ROWS: usize = 40;
        let ids: Vec<String> = items
            .iter()
            .map(|(existing, _)| {
                existing
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
            })
            .collect();
        let mut tx = self.begin_write(None).await?;
        let updated: Vec<&str> = items
            .iter()
            .zip(&ids)
            .filter(|((existing, _), _)| existing.is_some())
            .map(|(_, id)| id.as_str())
            .collect();
        let mut published_before: std::collections::HashSet<String> = Default::default();
        for chunk in updated.chunks(IMPORT_LOOKUP) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id FROM articles WHERE status = 'published' AND id IN ({})",
                marks.join(", ")
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            published_before.extend(query.fetch_all(&mut *tx).await?);
        }
        let rows: Vec<(&str, &ArticleRecord)> = ids
            .iter()
            .map(String::as_str)
            .zip(items.iter().map(|(_, record)| record))
            .collect();
        for chunk in rows.chunks(ROWS) {
            let sql = upsert_sql(chunk.len());
            let mut query = sqlx::query(&sql);
            for (id, article) in chunk {
                query = article.bind_to(query.bind(*id)).bind(now);
            }
            query.execute(&mut *tx).await.map_err(conflict_or)?;
            write_sources(&mut tx, chunk).await?;
        }
        let endpoints: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks")
            .fetch_one(&mut *tx)
            .await?;
        if endpoints > 0 {
            let mut events = Vec::new();
            for chunk in ids.chunks(IMPORT_LOOKUP) {
                let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT {} FROM articles \
                     JOIN article_sources ON article_sources.article_id = articles.id \
                     WHERE articles.id IN ({})",
                    *ARTICLE_COLUMNS,
                    marks.join(", ")
                );
                let mut query = sqlx::query_as::<_, ArticleRow>(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                for row in query.fetch_all(&mut *tx).await? {
                    let before = published_before.contains(&row.meta.id);
                    events.extend(Event::article_change(before, &row));
                }
            }
            emit(&mut tx, &events, now).await?;
        }
        tx.commit().await?;
        self.articles_changed().await?;
        Ok(ids)
    }

    /// The batch item by item, each in a savepoint: an item that fails is rolled back
    /// alone and reported, the others are kept.
    async fn import_one_by_one(
        &self,
        items: &[(Option<String>, ArticleRecord)],
        now: i64,
    ) -> Result<Vec<Result<String, StoreError>>, StoreError> {
        let insert = format!("{} RETURNING {}", insert_sql(1), *READER_ARTICLE_COLUMNS);
        let update = format!("{} RETURNING {}", update_sql(), *READER_ARTICLE_COLUMNS);
        let mut tx = self.begin_write(None).await?;
        let mut outcomes = Vec::with_capacity(items.len());
        for (existing, article) in items {
            sqlx::query("SAVEPOINT import_item")
                .execute(&mut *tx)
                .await?;
            let written: Result<String, StoreError> = async {
                let (id, sql) = match existing {
                    Some(id) => (id.clone(), &update),
                    None => (uuid::Uuid::now_v7().to_string(), &insert),
                };
                let before = existing.is_some() && was_published(&mut tx, &id).await?;
                let mut row = article
                    .bind_to(sqlx::query_as::<_, ArticleRow>(sql).bind(&id))
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(conflict_or)?
                    .ok_or(StoreError::NotFound)?;
                write_sources(&mut tx, &[(id.as_str(), article)]).await?;
                row.external_id = article.external_id.clone();
                row.canonical_url = article.canonical_url.clone();
                if let Some(event) = Event::article_change(before, &row) {
                    emit(&mut tx, &[event], now).await?;
                }
                Ok(id)
            }
            .await;
            let end = if written.is_ok() {
                "RELEASE SAVEPOINT import_item"
            } else {
                "ROLLBACK TO SAVEPOINT import_item"
            };
            sqlx::query(end).execute(&mut *tx).await?;
            outcomes.push(written);
        }
        tx.commit().await?;
        self.articles_changed().await?;
        Ok(outcomes)
    }

    pub async fn article_by_slug(&self, slug: &str) -> Result<Option<ArticleRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM articles \
             JOIN article_sources ON article_sources.article_id = articles.id WHERE slug = $1",
            *ARTICLE_COLUMNS
        );
        Ok(sqlx::query_as::<_, ArticleRow>(&sql)
            .bind(slug)
            .fetch_optional(&mut *self.reader().await?)
            .await?)
    }

    /// An article as readers get it: the editor's source (marker included) is not even
    /// read.
    pub async fn reader_article(&self, slug: &str) -> Result<Option<ArticleRow>, StoreError> {
        self.check_reachable()?;
        let sql = format!(
            "SELECT {} FROM articles WHERE slug = $1",
            *READER_ARTICLE_COLUMNS
        );
        Ok(sqlx::query_as::<_, ArticleRow>(&sql)
            .bind(slug)
            .fetch_optional(&mut *self.reader().await?)
            .await?)
    }

    pub async fn slug_exists(&self, slug: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM articles WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        Ok(found.is_some())
    }

    pub async fn delete_article(
        &self,
        slug: &str,
        audit: Option<&AuditEntry>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let sql = format!(
            "SELECT {} FROM articles \
             JOIN article_sources ON article_sources.article_id = articles.id WHERE slug = $1",
            *ARTICLE_COLUMNS
        );
        let Some(current) = sqlx::query_as::<_, ArticleRow>(&sql)
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let id = current.meta.id.clone();
        sqlx::query("DELETE FROM articles WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        if current.meta.status == ArticleStatus::Published {
            emit(
                &mut tx,
                &[Event::article("article.unpublished", &current)],
                now,
            )
            .await?;
        }
        if let Some(entry) = audit {
            record(
                &mut tx,
                &entry.about(&id).details(serde_json::json!({"slug": slug})),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        self.articles_changed().await?;
        Ok(true)
    }

    /// A page of published articles whose time has come (`PUBLIC_PAGE`), through the
    /// read pool.
    pub async fn public_page(
        &self,
        page: &PublicPage<'_>,
    ) -> Result<Vec<ArticleSummaryRow>, StoreError> {
        Ok(sqlx::query_as::<_, ArticleSummaryRow>(&PUBLIC_PAGE)
            .bind(page.now)
            .bind(page.section)
            .bind(page.after_key)
            .bind(page.after_id)
            .bind(page.rows)
            .fetch_all(&mut *self.reader().await?)
            .await?)
    }

    /// When the next published article whose time has not come yet comes out.
    pub async fn next_publication(&self, now: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(published_at) FROM articles WHERE status = 'published' AND published_at > $1",
        )
        .bind(now)
        .fetch_one(&mut *self.reader().await?)
        .await?)
    }

    /// Every article, drafts included, newest created first.
    pub async fn list_all_articles(
        &self,
        status: Option<&str>,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<ArticleSummaryRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM articles \
             WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
            *SUMMARY_COLUMNS
        );
        Ok(sqlx::query_as::<_, ArticleSummaryRow>(&sql)
            .bind(status)
            .bind(after.map(|c| c.key))
            .bind(after.map(|c| c.id.as_str()))
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *self.reader().await?)
            .await?)
    }
}

/// An article to write in unit tests: a short French body cut at 0.4.
#[cfg(test)]
pub(crate) fn sample_record(
    slug: &str,
    teaser_ratio: Option<f64>,
    standfirst: Option<&str>,
) -> ArticleRecord {
    let body = "Première phrase, « guillemets » et \"échappements\".\n\nSecond paragraph.";
    let fields = ArticleFields {
        slug: slug.into(),
        title: format!("Title of {slug}"),
        standfirst: standfirst.map(str::to_string),
        section: "culture".into(),
        author: None,
        access: AccessLevel::Subscribers,
        status: ArticleStatus::Published,
        teaser_ratio,
        published_at: Some(1_790_000_000),
    };
    let prepared = crate::paywall::teaser::prepare(body, 0.4).unwrap();
    ArticleRecord::new(fields, 0.4, prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::sample_record as record;

    #[tokio::test]
    async fn an_import_batch_with_a_taken_slug_refuses_that_item_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("import.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store
            .insert_article(&record("taken", None, None), None, 1_790_000_000)
            .await
            .unwrap();
        let with_id = |slug: &str, id: &str| {
            let mut article = record(slug, None, None);
            article.external_id = Some(id.to_string());
            (None, article)
        };
        // The multi-row write fails on the taken slug; written again one by one, only
        // that item is refused.
        let outcomes = store
            .import_articles(
                &[
                    with_id("first", "x-1"),
                    with_id("taken", "x-2"),
                    with_id("third", "x-3"),
                ],
                1_790_000_100,
            )
            .await
            .unwrap();
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StoreError::Conflict)),
            "{outcomes:?}"
        );
        let found = store
            .articles_by_external_ids(&["x-1".into(), "x-2".into(), "x-3".into()])
            .await
            .unwrap();
        let mut slugs: Vec<&str> = found.iter().map(|row| row.meta.slug.as_str()).collect();
        slugs.sort_unstable();
        assert_eq!(slugs, ["first", "third"]);
        // A second batch updates by id, creations and updates in one statement.
        let first_id = found
            .iter()
            .find(|r| r.meta.slug == "first")
            .unwrap()
            .meta
            .id
            .clone();
        let mut edited = record("first", None, None);
        edited.title = "Edited".into();
        edited.external_id = Some("x-1".into());
        let outcomes = store
            .import_articles(
                &[(Some(first_id.clone()), edited), with_id("fourth", "x-4")],
                1_790_000_200,
            )
            .await
            .unwrap();
        assert_eq!(outcomes[0].as_ref().unwrap(), &first_id);
        let first = store.article_by_slug("first").await.unwrap().unwrap();
        assert_eq!(first.meta.title, "Edited");
        assert_eq!(
            first.meta.created_at, 1_790_000_100,
            "the creation time is kept"
        );
        assert_eq!(first.meta.updated_at, 1_790_000_200);
        assert_eq!(first.external_id.as_deref(), Some("x-1"));
    }

    #[tokio::test]
    async fn the_editors_source_lives_beside_the_article_and_moves_there_on_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sources.db").display());
        let store = Store::connect(&url).await.unwrap();

        // A database made before the source had a table of its own, with one article.
        let all = sqlx::migrate!("./migrations/sqlite");
        let before = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(
                all.migrations
                    .iter()
                    .filter(|m| m.version < 5)
                    .cloned()
                    .collect(),
            ),
            ..all
        };
        before.run(&store.write).await.unwrap();
        sqlx::query(
            "INSERT INTO articles (id, slug, title, section, access, status, teaser_ratio_used, \
             body_source, body, teaser_bytes, teaser_chars, total_chars, percent_left_hundredths, \
             word_count, published_at, created_at, updated_at) VALUES ('old-id', 'old', 'Old', \
             'culture', 'free', 'published', 0.4, 'Old source', 'Old body', 3, 3, 8, 6250, 2, \
             1790000000, 1790000000, 1790000000)",
        )
        .execute(&store.write)
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let old = store.article_by_slug("old").await.unwrap().unwrap();
        assert_eq!(
            (old.body_source.as_str(), old.body.as_str()),
            ("Old source", "Old body")
        );

        // Written, replaced and deleted with its article.
        store
            .insert_articles(&[record("bulk", None, None)], 1_790_000_000)
            .await
            .unwrap();
        let made = store
            .insert_article(&record("single", None, None), None, 1_790_000_000)
            .await
            .unwrap();
        for slug in ["bulk", "single"] {
            let row = store.article_by_slug(slug).await.unwrap().unwrap();
            assert_eq!(row.body_source, record(slug, None, None).body_source);
        }
        assert_eq!(made.body_source, record("single", None, None).body_source);
        let mut edit = record("single", None, None);
        edit.body_source = "A new source.".into();
        let edited = store
            .update_article(&made.meta.id, &edit, None, 1_790_000_100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(edited.body_source, "A new source.");
        let row = store.article_by_slug("single").await.unwrap().unwrap();
        assert_eq!(row.body_source, "A new source.");
        assert_eq!(row.body, edited.body);
        store
            .delete_article("single", None, 1_790_000_200)
            .await
            .unwrap();
        let left: Vec<String> =
            sqlx::query_scalar("SELECT article_id FROM article_sources ORDER BY article_id")
                .fetch_all(&store.write)
                .await
                .unwrap();
        let bulk = store.article_by_slug("bulk").await.unwrap().unwrap();
        let mut expected = vec!["old-id".to_string(), bulk.meta.id];
        expected.sort();
        assert_eq!(left, expected, "a deleted article's source goes with it");
    }

    #[test]
    fn the_rows_description_yields_statements_that_agree() {
        for name in WRITTEN_NAMES {
            assert!(
                SUMMARY_NAMES.contains(name) || TEXT_NAMES.contains(name),
                "{name} is written but never read"
            );
        }
        assert!(!WRITTEN_NAMES.contains(&"id") && !WRITTEN_NAMES.contains(&"body_source"));
        let two = insert_sql(2);
        let numbers: Vec<usize> = two
            .split('$')
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap()
            })
            .collect();
        let mut distinct = numbers.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            distinct,
            (1..=2 * INSERT_PARAMS).collect::<Vec<_>>(),
            "every parameter of both rows, and no other: {two}"
        );
        let ratio = 2 + WRITTEN_NAMES
            .iter()
            .position(|n| *n == "teaser_ratio")
            .unwrap();
        assert!(two.contains(&format!("NULLIF(${ratio}, -1.0)")));
        let update = update_sql();
        assert!(update.contains(&format!("teaser_ratio = NULLIF(${ratio}, -1.0)")));
        assert!(update.ends_with(&format!("updated_at = ${INSERT_PARAMS} WHERE id = $1")));
        assert!(READER_ARTICLE_COLUMNS.contains("'' AS body_source"));
        assert!(READER_ARTICLE_COLUMNS.starts_with(SUMMARY_COLUMNS.as_str()));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            key: 1_790_000_000,
            id: uuid::Uuid::now_v7().to_string(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for garbage in ["", "!!!", "bm9wZQ", "MTIzfG5vdC1hLXV1aWQ"] {
            assert_eq!(Cursor::decode(garbage), None, "{garbage}");
        }
    }
}
