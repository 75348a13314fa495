-- keycard on PostgreSQL: the same tables as on SQLite (see migrations/sqlite), with native
-- UUIDs, identities and JSONB. Times are seconds since the Unix epoch (BIGINT), as on SQLite.

-- Accounts.
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The username as registered, shown back to the user and put in the `sub` claim.
    username      TEXT   NOT NULL,
    -- Canonical form of the username (NFKC, case-folded): uniqueness and login use this.
    username_key  TEXT   NOT NULL UNIQUE,
    email         TEXT,
    -- PHC string (argon2id; the parameters travel with the hash).
    password_hash TEXT   NOT NULL,
    status        TEXT   NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Roles granted to accounts; copied into the `roles` claim at login and refresh.
CREATE TABLE user_roles (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- Login sessions: one per password login, continued by each refresh.
CREATE TABLE sessions (
    -- The `sid` claim shared by every token of the session.
    id             UUID   PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- `jti` of the one refresh token that may be used next; rotation swaps it atomically.
    refresh_jti    UUID   NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT NOT NULL,
    -- `exp` of the current refresh token.
    expires_at     BIGINT NOT NULL,
    -- Set when the session ends: logout, refresh-token reuse, password change, account disabled.
    revoked_at     BIGINT,
    revoked_reason TEXT,
    client_addr    TEXT,
    user_agent     TEXT
);

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Revoked token ids (`jti`) and session ids (`sid`), loaded into memory at start and followed by
-- every instance by `seq` (woken by NOTIFY keycard_revocations). Writers serialise on an advisory
-- lock, so `seq` order is commit order and a cursor never skips a row.
CREATE TABLE revocations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         UUID   NOT NULL UNIQUE,
    -- After this time no token the id could match is valid any more: the row can be deleted.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);

CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- Security events. Never a password or a token.
CREATE TABLE audit_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    username    TEXT,
    client_addr TEXT,
    user_agent  TEXT,
    session_id  TEXT,
    detail      JSONB
);

CREATE INDEX audit_events_username_at ON audit_events (lower(username), at);
CREATE INDEX audit_events_kind_at ON audit_events (kind, at);
CREATE INDEX audit_events_at ON audit_events (at);

-- Failed-login state per account name, shared by every instance.
CREATE TABLE login_failures (
    username_key    TEXT   PRIMARY KEY,
    consecutive     BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    -- Times of the failures in the last hour, comma-separated, oldest first.
    recent          TEXT   NOT NULL,
    locked_until    BIGINT NOT NULL
);
