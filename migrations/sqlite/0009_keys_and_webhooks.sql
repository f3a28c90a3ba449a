-- Machine credentials, outbound webhooks and where imported articles came from.

-- API keys for the publisher's systems. Only a keyed digest of each key is kept
-- (`digest`, HMAC-SHA256 under a key derived from the signing secret; `digest_kid` names
-- that secret), with its first characters (`prefix`) to tell keys apart. `scopes` is a
-- space-separated list. A revoked key keeps its row, so the audit log's actor stays known.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    prefix TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    digest_kid TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

-- Endpoints that receive events. `events` is a space-separated list; `active` is 1 while
-- deliveries are made. `secret` signs them (Standard Webhooks' `whsec_` form).
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    secret TEXT NOT NULL,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per event that at least one endpoint was subscribed to, written in the same
-- transaction as the change it tells of. `subject` orders it: `account:<id>` or
-- `article:<id>`.
CREATE TABLE webhook_messages (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per (endpoint, event): the outbox. `seq` is the commit order within a subject
-- (its row is inserted after the subject's own row is written, under that row's lock).
-- `locked_until` is an instance's claim while it sends.
CREATE TABLE webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_attempt_at BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_chain ON webhook_deliveries (webhook_id, subject, status, seq);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, seq);

-- Where an imported article came from: its id there (a repeated import updates it) and
-- its address there. Beside the editor's source: readers never read them.
ALTER TABLE article_sources ADD COLUMN external_id TEXT;
ALTER TABLE article_sources ADD COLUMN canonical_url TEXT;
CREATE UNIQUE INDEX article_sources_external_id ON article_sources (external_id);
