-- Roles granted to accounts; copied into the `roles` claim at login and refresh.
CREATE TABLE user_roles (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL,
    -- Seconds since the Unix epoch.
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, role)
) STRICT;
