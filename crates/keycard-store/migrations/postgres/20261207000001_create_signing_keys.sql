-- Asymmetric signing keys (issue 13), shared by every keycard instance on this database. The
-- server signs with the `active` key of its algorithm and publishes the public half of every
-- key that is not yet deleted at /.well-known/jwks.json. A key retired by a rotation keeps
-- verifying until every token it signed has expired (retired_at + refresh lifetime + leeway),
-- then the row is deleted. Times are seconds since the Unix epoch.
CREATE TABLE signing_keys (
    -- RFC 7638 thumbprint of the public key (base64url SHA-256): the tokens' `kid`.
    kid          TEXT    PRIMARY KEY,
    -- JWS algorithm: ES256, ES384, EdDSA, RS256, PS256, ...
    algorithm    TEXT    NOT NULL,
    -- PKCS#8 v1 DER of the private key, or, when `sealed`, nonce || AES-256-GCM ciphertext of
    -- it (additional data: the kid) under KEYCARD_KEY_ENCRYPTION_KEY.
    private_key  BYTEA   NOT NULL,
    sealed       BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    -- When the key started signing (NULL while it is only `next`).
    activated_at BIGINT,
    -- When a newer key replaced it (NULL while it is `active` or `next`).
    retired_at   BIGINT,
    -- 'active' (signs), 'next' (published, signs after the next rotation) or 'retired'
    -- (published, verifies, never signs).
    state        TEXT    NOT NULL CHECK (state IN ('active', 'next', 'retired'))
);

-- At most one active key per algorithm: two servers generating their first key at the same
-- moment cannot both win.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (algorithm) WHERE state = 'active';
