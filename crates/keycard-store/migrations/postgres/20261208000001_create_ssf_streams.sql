-- Shared Signals (SSF 1.0) event streams (issue 15): one per receiver stream, made through the
-- configuration endpoint. The events themselves are the session rows of `revocations` (joined
-- with `sessions`): written in the same transaction as the revocation they announce, kept until
-- no token of the session can still be valid, then purged with it.
CREATE TABLE ssf_streams (
    -- UUID text: the stream_id.
    id               TEXT    PRIMARY KEY,
    -- Hex SHA-256 of the receiver credential that made the stream (never the credential).
    receiver         TEXT    NOT NULL,
    description      TEXT,
    -- JSON array of the event type URIs the receiver asked for.
    events_requested TEXT    NOT NULL,
    -- 'enabled' (delivering), 'paused' (holding events) or 'disabled' (dropping them).
    status           TEXT    NOT NULL CHECK (status IN ('enabled', 'paused', 'disabled')),
    status_reason    TEXT,
    -- Every event with revocations.seq <= this has been acknowledged (or was dropped).
    acked_through    BIGINT  NOT NULL,
    -- Seconds since the Unix epoch.
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);

CREATE INDEX ssf_streams_receiver ON ssf_streams (receiver);

-- Events acknowledged above a stream's `acked_through` (out of order).
CREATE TABLE ssf_acks (
    stream_id TEXT    NOT NULL REFERENCES ssf_streams (id) ON DELETE CASCADE,
    seq       BIGINT  NOT NULL,
    PRIMARY KEY (stream_id, seq)
);

-- Verification events (SSF 1.0 §8.1.4) waiting for their stream's receiver.
CREATE TABLE ssf_verifications (
    -- UUID text: the SET's jti.
    id         TEXT    PRIMARY KEY,
    stream_id  TEXT    NOT NULL REFERENCES ssf_streams (id) ON DELETE CASCADE,
    state      TEXT,
    created_at BIGINT  NOT NULL
);

CREATE INDEX ssf_verifications_stream ON ssf_verifications (stream_id, created_at);
