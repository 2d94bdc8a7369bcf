-- A signed query is accepted with one message only (0005). Its record was a unique index on the signature
-- alone: a hash, so every message wrote to a random page of that index (a page of the write-ahead log
-- each, about a quarter of what a message wrote). The record is now keyed by the later of the query's
-- timestamp and nonce first, then the signature: for WeChat's queries (nonces below 2^31) that is nearly
-- always the timestamp, so new entries go at the index's end. The key is the same for the query with its
-- timestamp and nonce swapped, which has the same signature (store/messages.rs, NewMessage::signed_at).
-- Messages stored before have no `signed_at`: their queries are refused by the clock check
-- (WXPORTAL_MAX_CLOCK_SKEW) instead, long expired when this runs.
ALTER TABLE messages ADD COLUMN signed_at INTEGER;
DROP INDEX messages_by_signature;
CREATE UNIQUE INDEX messages_by_signed_query ON messages (signed_at, signature) WHERE signature IS NOT NULL;
