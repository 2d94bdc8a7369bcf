-- The OpenID Connect provider (docs/architecture.md, "Sign in with WeChat for your apps"): the apps that
-- sign followers in through wxportal, the keys ID tokens are signed with, and what each sign-in issued.
-- Codes and tokens are kept as SHA-256 hashes only.
CREATE TABLE oidc_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- hex SHA-256 of the secret; NULL for a public client (PKCE only).
    secret_hash TEXT,
    -- JSON arrays of URIs, matched exactly.
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    consent INTEGER NOT NULL,
    -- 'pairwise' or 'openid': what `sub` is.
    subject TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    secret_rotated_at INTEGER
);

CREATE TABLE oidc_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    -- PKCS#8, base64.
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);

CREATE TABLE oidc_grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
    openid TEXT NOT NULL,
    scope TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- The last moment a refresh token of this grant can be used.
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX oidc_grants_expiry ON oidc_grants (expires_at);

CREATE TABLE oidc_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
    openid TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    redeemed_at INTEGER,
    -- The grant its redemption made: revoked when the code comes back.
    grant_id TEXT
);
CREATE INDEX oidc_codes_expiry ON oidc_codes (expires_at);

CREATE TABLE oidc_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    -- 'access' or 'refresh'.
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- A refresh token that was exchanged (rotated) or an access token revoked.
    used_at INTEGER
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_id);

CREATE TABLE oidc_consents (
    client_id TEXT NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
    openid TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, openid)
);
