-- Login sessions: one per password login, continued by each refresh.
CREATE TABLE sessions (
    -- The `sid` claim (UUID text) shared by every token of the session.
    id             TEXT    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- `jti` of the one refresh token that may be used next; rotation swaps it atomically.
    refresh_jti    TEXT    NOT NULL,
    -- Seconds since the Unix epoch.
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    -- `exp` of the current refresh token.
    expires_at     INTEGER NOT NULL,
    -- Set when the session ends: logout or refresh-token reuse.
    revoked_at     INTEGER,
    revoked_reason TEXT,
    -- Where the login came from.
    client_addr    TEXT,
    user_agent     TEXT
) STRICT;

CREATE INDEX sessions_user_id ON sessions (user_id);
