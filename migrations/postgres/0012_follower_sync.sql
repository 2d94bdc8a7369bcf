-- Followers imported from WeChat (docs/followers.md): the account's follower tags, when each follower
-- was last seen by a sync, and the sync's own progress (one row), so a run resumes where it stopped.
CREATE TABLE follower_tags (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    -- Followers WeChat counts under it.
    count BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- The run (its started_at) that last found this follower following.
ALTER TABLE users ADD COLUMN synced_at BIGINT;

CREATE TABLE follower_sync (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    -- running | done | failed (stopped by an error such as the daily quota: resumable)
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    started_at BIGINT NOT NULL,
    -- user/get's next_openid to continue from ('' = the start).
    cursor TEXT NOT NULL DEFAULT '',
    -- WeChat's follower count, and how many this run has stored.
    total BIGINT NOT NULL DEFAULT 0,
    seen BIGINT NOT NULL DEFAULT 0,
    -- Followers no longer following, marked at the end.
    unfollowed BIGINT NOT NULL DEFAULT 0,
    -- The process running it, and when it last showed it is alive.
    owner TEXT,
    heartbeat_at BIGINT NOT NULL DEFAULT 0,
    finished_at BIGINT,
    last_error TEXT
);
