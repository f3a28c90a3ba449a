-- The editor's source of each article, in a table of its own. Readers are sent the
-- prepared body only; with the source beside it in the same row, every reader's read
-- of an article also read the pages holding the source (rows twice the size, and on
-- SQLite one more overflow page per article). Moving it rewrites the articles table
-- once.
CREATE TABLE article_sources (
    article_id TEXT PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    body_source TEXT NOT NULL
);

INSERT INTO article_sources (article_id, body_source) SELECT id, body_source FROM articles;

ALTER TABLE articles DROP COLUMN body_source;
