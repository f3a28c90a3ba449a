-- Failed sign-ins and current-password checks, counted in a fixed window per key (an
-- email and client address, a client address, an account), in the database so that
-- every instance shares one allowance. Only failures and checks write here; a sign-in
-- without earlier failures reads one row at most.
CREATE TABLE failure_counts (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL
);

-- Finished windows are pruned by their start.
CREATE INDEX failure_counts_start ON failure_counts (window_start);
