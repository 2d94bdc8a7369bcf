-- Images uploaded as permanent material (material/add_material): WeChat's media_id, and a thumbnail
-- (PNG, base64) drawn here for the admin area.
CREATE TABLE media (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    media_id TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    thumbnail TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
