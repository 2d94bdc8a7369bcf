-- Talking back to WeChat: the account's shared credentials, the outbox of work done after the
-- 5-second window, follower info, slow reply rules and the menu draft.

-- One row per credential ('access_token', 'jsapi_ticket'), shared by every process on this database.
-- A fetch is made only by the holder of the lease, so a hundred needs, in one process or several, cause
-- one call to WeChat. `expires_at` = -1 marks a value WeChat refused (40001): the next fetch forces a
-- new one.
CREATE TABLE credentials (
    kind TEXT PRIMARY KEY NOT NULL,
    value TEXT,
    expires_at INTEGER NOT NULL DEFAULT 0,
    fetched_at INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    -- The last failed fetch, shown to the operator until a fetch succeeds.
    last_error TEXT,
    last_error_at INTEGER
);
INSERT INTO credentials (kind) VALUES ('access_token'), ('jsapi_ticket');

-- Fetches per Beijing day (WeChat's quota of 2000 a day resets at midnight there).
CREATE TABLE credential_fetches (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, kind)
) WITHOUT ROWID;

-- Work for WeChat's API that must not be lost: replies after the 5-second window (`reply`, delivered
-- with message/custom/send) and follower info on subscribe (`user_info`). A job is claimed for a
-- short while before each attempt; a claim that outlives its process (kill -9 mid-call) is taken over
-- once it lapses, so only a send cut off in mid-call can reach WeChat twice.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('reply', 'user_info')),
    openid TEXT NOT NULL,
    -- The message a reply answers.
    message_id INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    -- queued → sending → done | failed (queued again after a transient failure).
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    -- What WeChat last said (the reason a job failed, or why it is being retried).
    last_error TEXT,
    -- The customer-service message sent, as JSON (for the operator).
    sent TEXT
);
CREATE INDEX outbox_pending ON outbox (due_at) WHERE state IN ('queued', 'sending');
CREATE INDEX outbox_by_message ON outbox (message_id);
CREATE INDEX outbox_by_openid ON outbox (openid);

-- A slow rule answers `success` at once and delivers its reply through the outbox.
ALTER TABLE reply_rules ADD COLUMN slow INTEGER NOT NULL DEFAULT 0;

-- What cgi-bin/user/info adds about a follower.
ALTER TABLE users ADD COLUMN subscribe_time INTEGER;
ALTER TABLE users ADD COLUMN remark TEXT;
-- JSON array of tag ids.
ALTER TABLE users ADD COLUMN tags TEXT;
ALTER TABLE users ADD COLUMN info_fetched_at INTEGER;

-- The menu being edited in the admin area (JSON in menu/create's shape) and when it was last pushed.
INSERT INTO settings (name, value) VALUES ('menu_draft', '{"button":[]}');
