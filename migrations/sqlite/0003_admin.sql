-- The admin area: operators, their failed sign-ins, the account's reply rules, and the indexes the
-- follower and message lists page through.

CREATE TABLE admins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    -- argon2id, PHC string format.
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- A session remembers this; changing the password (or deleting the admin) ends every session.
    password_changed_at INTEGER NOT NULL,
    last_login_at INTEGER
);

-- Failed sign-ins, counted per account name and per client address over a sliding window.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL COLLATE NOCASE,
    address TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX login_failures_by_account ON login_failures (account, at);
CREATE INDEX login_failures_by_address ON login_failures (address, at);

-- What the account answers. `welcome` (subscribe) and `default` (any message no keyword matched) exist
-- once each; `keyword` rules are tried in `position` order. Any rule may also answer a menu CLICK key.
CREATE TABLE reply_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('welcome', 'default', 'keyword')),
    position INTEGER NOT NULL DEFAULT 0,
    match_mode TEXT NOT NULL DEFAULT 'exact' CHECK (match_mode IN ('exact', 'contains')),
    keyword TEXT,
    click_key TEXT UNIQUE,
    -- The reply as JSON: {"type": "text", "content": …}, {"type": "news", "articles": […]},
    -- {"type": "image", "media_id": …}. `{guide_url}` in it stands for the portal's guide page.
    reply TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX reply_rules_one_welcome_one_default ON reply_rules (kind) WHERE kind <> 'keyword';

-- The built-in replies become the initial rules.
INSERT INTO reply_rules (kind, reply, updated_at) VALUES
    ('welcome', '{"type":"text","content":"欢迎关注！🎉\n点击 <a href=\"{guide_url}\">这里</a> 打开我们的页面，授权后即可查看你的资料。"}', unixepoch()),
    ('default', '{"type":"text","content":"你好！这里是自动回复。\n打开 <a href=\"{guide_url}\">我们的页面</a> 了解更多。"}', unixepoch());

-- Bumped with every rule edit: each instance polls it to drop its cached rules.
INSERT INTO settings (name, value) VALUES ('reply_rules_revision', '1');

-- The follower list walks one of these in its sort order. They also hold what the list searches and
-- filters on, so a nickname search or a filter reads the index alone, never the (wide) rows it skips.
CREATE INDEX users_by_last_seen ON users (last_seen_at, openid, nickname, subscribed, scope);
CREATE INDEX users_by_first_seen ON users (first_seen_at, openid, nickname, subscribed, scope);
CREATE INDEX users_by_unionid ON users (unionid);
CREATE INDEX messages_by_type ON messages (msg_type, event, id);
