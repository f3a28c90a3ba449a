-- The meter: one row per (reader, period, article) counted. The primary key makes a
-- re-read free; the limit is checked inside the write transaction that inserts.
CREATE TABLE meter_reads (
    meter_key TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    article_id TEXT NOT NULL,
    period_end BIGINT NOT NULL,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (meter_key, period_start, article_id)
);

-- Finished periods are pruned by period_end.
CREATE INDEX meter_reads_end ON meter_reads (period_end);

-- Gift links made by subscribers; the token itself is signed and never stored.
CREATE TABLE gifts (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    article_id TEXT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX gifts_account ON gifts (account_id, created_at);
CREATE INDEX gifts_expiry ON gifts (expires_at);
