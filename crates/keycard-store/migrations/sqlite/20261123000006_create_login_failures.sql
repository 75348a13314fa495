-- Failed-login state per account name (known or not, so throttling reveals nothing), shared by
-- every keycard instance on this database.
CREATE TABLE login_failures (
    -- Canonical username (users.username_key form).
    username_key    TEXT    PRIMARY KEY,
    -- Failures since the last success (reset after an hour without failures).
    consecutive     INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    -- Times of the failures in the last hour, comma-separated, oldest first (at most the hourly
    -- cap of them): an exact sliding window.
    recent          TEXT    NOT NULL,
    -- No attempt is checked before this time (seconds since the epoch).
    locked_until    INTEGER NOT NULL
) STRICT;
