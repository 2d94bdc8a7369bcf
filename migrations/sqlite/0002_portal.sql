-- Web authorization (WECHAT.md §6): the profile a follower shares, and the per-user tokens.
ALTER TABLE users ADD COLUMN sex INTEGER;
ALTER TABLE users ADD COLUMN province TEXT;
ALTER TABLE users ADD COLUMN city TEXT;
ALTER TABLE users ADD COLUMN country TEXT;
-- JSON array of strings, as /sns/userinfo sends it.
ALTER TABLE users ADD COLUMN privilege TEXT;
-- The last /sns/userinfo answer as received, for the admin detail page.
ALTER TABLE users ADD COLUMN userinfo_json TEXT;
-- snsapi_base or snsapi_userinfo: the widest scope granted last time.
ALTER TABLE users ADD COLUMN scope TEXT;
ALTER TABLE users ADD COLUMN access_token TEXT;
ALTER TABLE users ADD COLUMN access_token_expires_at INTEGER;
ALTER TABLE users ADD COLUMN refresh_token TEXT;
ALTER TABLE users ADD COLUMN refresh_token_expires_at INTEGER;
ALTER TABLE users ADD COLUMN first_authorized_at INTEGER;
ALTER TABLE users ADD COLUMN last_authorized_at INTEGER;

-- One row per authorization started at /auth/login. The state parameter is signed and carries the nonce
-- and expiry; this row holds where to go afterwards and makes the state, and the code that comes back with
-- it, usable once, across every instance sharing the database.
CREATE TABLE oauth_states (
    nonce TEXT PRIMARY KEY NOT NULL,
    scope TEXT NOT NULL,
    next TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set when a callback claims the state; `code_hash` is SHA-256 of the code it came with.
    claimed_at INTEGER,
    code_hash TEXT UNIQUE,
    -- pending (claimed, exchange running), done, snapshot or failed.
    outcome TEXT,
    openid TEXT,
    finished_at INTEGER
);
CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);

-- Values generated once and shared by every instance (the session and state signing key).
CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
