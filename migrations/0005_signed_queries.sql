-- In plaintext and compatible mode the body is not covered by the signature: a signed query seen once
-- (a proxy's access log keeps query strings) could be replayed with another body. Each message keeps the
-- signature of the query it came with, and a signature is accepted with one message only.
ALTER TABLE messages ADD COLUMN signature TEXT;
CREATE UNIQUE INDEX messages_by_signature ON messages (signature) WHERE signature IS NOT NULL;
