-- The account writes first: operators' customer-service messages and template messages.
--
-- A `custom` outbox job carries the customer-service message to send (`payload`, JSON in
-- message/custom/send's shape) and the operator who wrote it (`author`). A `template` job sends its
-- campaign's template message to one follower; WeChat's `msgid` is kept, and the TEMPLATESENDJOBFINISH
-- event that arrives later sets `delivery`. A cancelled campaign's unsent jobs become `cancelled`.
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt with its rows, its ids and
-- its id sequence.
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('reply', 'user_info', 'custom', 'template')),
    openid TEXT NOT NULL,
    -- The message a reply answers.
    message_id INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    -- queued → sending → done | failed (queued again after a transient failure) | cancelled.
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'sending', 'done', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    -- What WeChat last said (the reason a job failed, or why it is being retried).
    last_error TEXT,
    -- The message sent, as JSON (for the operator).
    sent TEXT,
    -- What a `custom` job sends, as JSON.
    payload TEXT,
    -- The operator who wrote a `custom` job.
    author TEXT,
    -- The campaign a `template` job belongs to.
    campaign_id INTEGER,
    -- WeChat's msgid for a template message sent.
    msgid TEXT,
    -- TEMPLATESENDJOBFINISH's Status: success, failed:user block, failed: system failed.
    delivery TEXT
);
INSERT INTO outbox_new (id, kind, openid, message_id, state, attempts, due_at, claimed_by, claimed_until,
                        created_at, finished_at, last_error, sent)
    SELECT id, kind, openid, message_id, state, attempts, due_at, claimed_by, claimed_until, created_at,
           finished_at, last_error, sent
    FROM outbox;
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'outbox')
    WHERE name = 'outbox_new' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox');
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (due_at) WHERE state IN ('queued', 'sending');
CREATE INDEX outbox_by_message ON outbox (message_id);
CREATE INDEX outbox_by_openid ON outbox (openid);
-- A campaign reaches each follower once.
CREATE UNIQUE INDEX outbox_by_campaign ON outbox (campaign_id, openid) WHERE campaign_id IS NOT NULL;
CREATE INDEX outbox_campaign_progress ON outbox (campaign_id, state) WHERE campaign_id IS NOT NULL;
CREATE INDEX outbox_by_msgid ON outbox (msgid) WHERE msgid IS NOT NULL;

-- The account's templates as get_all_private_template last listed them.
CREATE TABLE templates (
    template_id TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    primary_industry TEXT NOT NULL,
    deputy_industry TEXT NOT NULL,
    content TEXT NOT NULL,
    example TEXT NOT NULL,
    fetched_at INTEGER NOT NULL
);

-- A template message to one follower or many: one `template` outbox job per follower, due at the
-- configured rate. Paused, its queued jobs wait; cancelled, they are cancelled.
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    template_id TEXT NOT NULL,
    -- template/send's body without `touser`: template_id, data, url, miniprogram.
    body TEXT NOT NULL,
    -- Who it was sent to, in words (one OpenID, or the follower list's filters).
    audience TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
    total INTEGER NOT NULL DEFAULT 0,
    -- Messages per second.
    rate INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
