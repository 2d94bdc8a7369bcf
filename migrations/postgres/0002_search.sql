-- Follower search on part of a nickname reads a trigram index instead of every follower (pg_trgm ships
-- with PostgreSQL's contrib package; since PostgreSQL 13 the database's owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_nickname_trgm ON users USING gin (nickname gin_trgm_ops);
