-- Event webhooks out (docs/events.md): the account's own systems told of what happens, signed as the
-- Standard Webhooks specification says, each event delivered once per endpoint, in order per follower.

-- Where events go. `secret` signs (it must be kept to sign with: it is a key, not a password); during a
-- rotation `previous_secret` signs too, until `previous_until`.
CREATE TABLE endpoints (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- Comma-separated event types, e.g. 'message,subscribe'.
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until INTEGER,
    enabled INTEGER NOT NULL DEFAULT 1,
    -- Why it was switched off (by an operator, or after failing for a day).
    disabled_reason TEXT,
    -- Since when every attempt has failed; cleared by a success.
    failing_since INTEGER,
    created_at INTEGER NOT NULL
);

-- What happened, as sent: `uid` is the `webhook-id` every endpoint and every attempt sees.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    openid TEXT NOT NULL DEFAULT '',
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_created ON events (created_at);

-- One event to one endpoint: queued → sending → done | failed (queued again after a failed attempt).
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id INTEGER NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    -- The follower the event is about: deliveries to one endpoint about one follower go in order.
    openid TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    -- Attempts stop after this (a day after it was queued, or sent again).
    give_up_at INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    -- The last attempt: the HTTP status (none when no answer came), why it failed, the answer's start.
    last_status INTEGER,
    last_error TEXT,
    response TEXT,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_pending ON deliveries (due_at) WHERE state IN ('queued', 'sending');
CREATE INDEX deliveries_in_order ON deliveries (endpoint_id, openid, id) WHERE state IN ('queued', 'sending');
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);
