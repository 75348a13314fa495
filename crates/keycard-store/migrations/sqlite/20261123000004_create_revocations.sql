-- Revoked token ids (`jti`) and session ids (`sid`), loaded into memory at start.
CREATE TABLE revocations (
    -- UUID text of the revoked jti or sid.
    id         TEXT    PRIMARY KEY,
    -- After this time (seconds since the epoch) no token the id could match is valid any more,
    -- so the row can be deleted.
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
) STRICT;

CREATE INDEX revocations_expires_at ON revocations (expires_at);
