-- One row that /readyz rewrites, at most once a second and only while the database has been
-- refusing writes (a full disk), to learn whether it takes them again without leaving anything
-- behind.
CREATE TABLE write_probe (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    -- When the probe last succeeded (seconds since the epoch).
    written_at BIGINT NOT NULL
);
INSERT INTO write_probe (id, written_at) VALUES (1, 0);
