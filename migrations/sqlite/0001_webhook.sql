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

-- Storing a message updates its sender in the same statement, so a message and its side effects commit
-- together (a retry, refused by the unique dedup_key, changes nothing). Only a follower can send
-- messages, so a first message means subscribed; a (un)subscribe event sets the flag unless a newer one,
-- by WeChat's CreateTime, already did.
CREATE TRIGGER messages_touch_sender AFTER INSERT ON messages
BEGIN
    INSERT INTO users (openid, subscribed, subscription_changed_at, first_seen_at, last_seen_at)
    VALUES (
        NEW.openid,
        NOT (NEW.msg_type = 'event' AND lower(NEW.event) = 'unsubscribe'),
        CASE WHEN NEW.msg_type = 'event' AND lower(NEW.event) IN ('subscribe', 'unsubscribe') THEN NEW.created_at END,
        NEW.received_at,
        NEW.received_at
    )
    ON CONFLICT (openid) DO UPDATE SET
        last_seen_at = max(users.last_seen_at, excluded.last_seen_at),
        subscribed = CASE WHEN excluded.subscription_changed_at >= coalesce(users.subscription_changed_at, 0)
                     THEN excluded.subscribed ELSE users.subscribed END,
        subscription_changed_at = CASE WHEN excluded.subscription_changed_at >= coalesce(users.subscription_changed_at, 0)
                     THEN excluded.subscription_changed_at ELSE users.subscription_changed_at END;
END;
