-- Revoked token ids (`jti`) and session ids (`sid`), loaded into memory at start and polled by
-- running servers (by `seq`) so a revocation made elsewhere (the CLI, another instance) is
-- honoured within a second.
CREATE TABLE revocations (
    -- Strictly increasing, never reused (AUTOINCREMENT): the polling cursor.
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    -- UUID text of the revoked jti or sid.
    id         TEXT    NOT NULL UNIQUE,
    -- After this time (seconds since the epoch) no token the id could match is valid any more,
    -- so the row can be deleted.
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
) STRICT;

CREATE INDEX revocations_expires_at ON revocations (expires_at);
