-- Operators answer followers by hand: a `custom` outbox job carries the customer-service message to send
-- (`payload`, JSON in message/custom/send's shape) and the name of the operator who wrote it (`author`).
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt with its rows, its ids and its
-- id sequence.
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('reply', 'user_info', 'custom')),
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
    sent TEXT,
    -- What a `custom` job sends, as JSON.
    payload TEXT,
    -- The operator who wrote a `custom` job.
    author TEXT
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
