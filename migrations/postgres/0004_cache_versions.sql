-- Every write that changes what readers are served bumps a version here in the same
-- transaction; each instance polls these few rows and drops its caches on a change.
CREATE TABLE cache_versions (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);

INSERT INTO cache_versions (name, version) VALUES ('articles', 0), ('sessions', 0);
