-- In plaintext and compatible mode the body is not covered by the signature: a signed query seen once
-- (a proxy's access log keeps query strings) could be replayed with another body. Each message keeps the
-- signature of the query it came with, and a signature is accepted with one message only.
ALTER TABLE messages ADD COLUMN signature TEXT;
CREATE UNIQUE INDEX messages_by_signature ON messages (signature) WHERE signature IS NOT NULL;

-- An event without an <Event> element made `subscribed` NULL in the trigger below and failed the whole
-- batch of messages it was committed with (found by fuzzing). The event name now counts as empty.
DROP TRIGGER messages_touch_sender;
CREATE TRIGGER messages_touch_sender AFTER INSERT ON messages
BEGIN
    INSERT INTO users (openid, subscribed, subscription_changed_at, first_seen_at, last_seen_at)
    VALUES (
        NEW.openid,
        NOT (NEW.msg_type = 'event' AND coalesce(lower(NEW.event), '') = 'unsubscribe'),
        CASE WHEN NEW.msg_type = 'event' AND coalesce(lower(NEW.event), '') IN ('subscribe', 'unsubscribe') THEN NEW.created_at END,
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

-- From this version on, an oauth_states row is written when a callback claims its state (an insert that
-- conflicts on reuse), never at /auth/login: the pending sign-in travels in the signed state itself.
