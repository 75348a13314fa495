-- Security events: logins, refreshes, logouts, password and role changes, disabling, throttling.
-- Never a password or a token.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    -- Seconds since the Unix epoch.
    at          INTEGER NOT NULL,
    -- What happened: login_succeeded, login_failed, refresh, refresh_reuse, logout, ...
    kind        TEXT    NOT NULL,
    -- The account concerned (as presented, for failed logins of unknown names).
    username    TEXT,
    client_addr TEXT,
    user_agent  TEXT,
    -- The `sid` of the session concerned, if any.
    session_id  TEXT,
    -- JSON object with event-specific details (scope, roles, actor, ...).
    detail      TEXT
) STRICT;

CREATE INDEX audit_events_username_at ON audit_events (username, at);
CREATE INDEX audit_events_kind_at ON audit_events (kind, at);
CREATE INDEX audit_events_at ON audit_events (at);
