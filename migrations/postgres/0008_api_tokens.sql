-- The HTTP API's tokens (docs/api.md): each names what it may do. Only the SHA-256 of a token is kept.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- Space-separated scopes, e.g. 'followers:read messages:read'.
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
