-- Reading seats: which session reads for an account, on which of its plan's seats, and
-- until when. A session holds its seat until `held_until` (its last recorded full-text
-- read plus the hold time); a row past that, or of a session that has ended, holds
-- nothing, so no sweep is needed for correctness. Slots at or past the plan's `seats`
-- hold nothing either (a plan made smaller).
CREATE TABLE seats (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    slot BIGINT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    held_since BIGINT NOT NULL,
    held_until BIGINT NOT NULL,
    PRIMARY KEY (account_id, slot)
);

CREATE INDEX seats_session ON seats (session_id);
