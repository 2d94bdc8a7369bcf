-- Sessions in the project's own table: the session's data as JSON, its expiry in unix seconds (indexed,
-- so the hourly clean-up reads only what has expired). Sessions of the previous table end: their
-- holders sign in once more.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
DROP TABLE IF EXISTS tower_sessions;
