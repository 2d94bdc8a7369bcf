-- The two nickname indexes (0002's trigrams, 0003's characters and pairs) hold only followers who have a
-- nickname, as SQLite's do (its triggers skip a NULL nickname). A sender known only from their messages
-- has none, and each new one cost both GIN indexes an entry (their pending list's page, under a lock of
-- its own) that no search could find. Every search names the nickname with a strict operator, which
-- implies `nickname IS NOT NULL`, so the planner still reads these indexes for it.
DROP INDEX users_nickname_trgm;
CREATE INDEX users_nickname_trgm ON users USING gin (nickname gin_trgm_ops) WHERE nickname IS NOT NULL;
DROP INDEX users_nickname_grams;
CREATE INDEX users_nickname_grams ON users USING gin (nickname_grams(nickname)) WHERE nickname IS NOT NULL;
