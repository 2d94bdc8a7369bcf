-- Followers, keyed by OpenID. Web authorization fills the profile columns later.
CREATE TABLE users (
    openid TEXT PRIMARY KEY NOT NULL,
    unionid TEXT,
    nickname TEXT,
    headimgurl TEXT,
    subscribed INTEGER NOT NULL DEFAULT 0,
    -- CreateTime of the (un)subscribe event that set `subscribed`, so a late retry cannot undo a newer one.
    subscription_changed_at INTEGER,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);

-- Every inbound message and event, with the reply that was sent.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- WECHAT.md §3: MsgId for messages, FromUserName + CreateTime + Event for events.
    dedup_key TEXT NOT NULL UNIQUE,
    openid TEXT NOT NULL,
    account TEXT NOT NULL,
    msg_type TEXT NOT NULL,
    event TEXT,
    msg_id TEXT,
    created_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    fields TEXT NOT NULL,
    raw_xml TEXT NOT NULL,
    -- The plaintext reply XML, or '' when the answer was `success`.
    reply_xml TEXT NOT NULL,
    encrypted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_openid ON messages (openid, id);
CREATE INDEX messages_by_received ON messages (received_at);
