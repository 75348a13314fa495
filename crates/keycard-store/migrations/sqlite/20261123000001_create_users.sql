-- Accounts.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    -- The username as registered, shown back to the user and put in the `sub` claim.
    username      TEXT    NOT NULL,
    -- Canonical form of the username (case-folded): uniqueness and login use this.
    username_key  TEXT    NOT NULL UNIQUE,
    -- Optional contact address, as given.
    email         TEXT,
    -- PHC string (argon2id; the parameters travel with the hash).
    password_hash TEXT    NOT NULL,
    -- 'active' or 'disabled'.
    status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    -- Seconds since the Unix epoch.
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
