-- QR codes with a scene (带参数二维码), created through qrcode/create with a string scene. `url` is what
-- the code encodes (drawn locally); a temporary code has an expiry, a permanent one none.
CREATE TABLE qr_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    scene TEXT NOT NULL UNIQUE,
    permanent INTEGER NOT NULL,
    ticket TEXT NOT NULL,
    url TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    -- The operator who created it, or `cli`.
    created_by TEXT NOT NULL
);

-- Every scan of a code with a scene: a subscribe through it (`qrscene_` + scene; `subscribed` set) or a
-- SCAN by a follower. Written with the message in the same commit, so a retry adds nothing. Kept when
-- messages are pruned: the counts are the code's history.
CREATE TABLE qr_scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scene TEXT NOT NULL,
    openid TEXT NOT NULL,
    subscribed INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX qr_scans_by_scene ON qr_scans (scene, subscribed);
CREATE INDEX qr_scans_by_openid ON qr_scans (openid);

-- The code of the follower's latest subscribe (NULL: they came another way).
ALTER TABLE users ADD COLUMN qr_scene TEXT;
CREATE INDEX users_by_qr_scene ON users (qr_scene) WHERE qr_scene IS NOT NULL;

-- A rule bound to a code answers its scans (as a menu CLICK key does), and a subscribe through it
-- instead of the welcome.
ALTER TABLE reply_rules ADD COLUMN qr_scene TEXT;
CREATE UNIQUE INDEX reply_rules_by_qr_scene ON reply_rules (qr_scene);
