-- Accounts, sessions with rotating refresh tokens, and articles with their precomputed
-- teaser cut. Timestamps are Unix seconds (UTC); ids are UUIDv7 text.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT,
    password_hash TEXT,
    role TEXT NOT NULL CHECK (role IN ('reader', 'editor', 'admin')),
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    subscription_plan TEXT,
    subscription_started_at BIGINT,
    subscription_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_login_at BIGINT
);

CREATE INDEX accounts_role ON accounts (role, status);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    user_agent TEXT
);

CREATE INDEX sessions_account ON sessions (account_id);

-- Only SHA-256 digests of refresh tokens are kept. A used token stays (with used_at)
-- until its session ends, so that presenting it again is recognised as reuse.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE articles (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    standfirst TEXT,
    section TEXT NOT NULL,
    author TEXT,
    access TEXT NOT NULL CHECK (access IN ('free', 'registered', 'metered', 'subscribers')),
    status TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    -- The ratio the editor chose, or NULL for the configured default.
    teaser_ratio DOUBLE PRECISION,
    -- The ratio the stored cut was computed with.
    teaser_ratio_used DOUBLE PRECISION NOT NULL,
    body_source TEXT NOT NULL,
    body TEXT NOT NULL,
    teaser_bytes BIGINT NOT NULL,
    teaser_chars BIGINT NOT NULL,
    total_chars BIGINT NOT NULL,
    percent_left_hundredths BIGINT NOT NULL,
    word_count BIGINT NOT NULL,
    published_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX articles_public ON articles (status, published_at DESC, id DESC);
CREATE INDEX articles_section ON articles (section, status, published_at DESC, id DESC);
CREATE INDEX articles_admin ON articles (created_at DESC, id DESC);
