-- Idempotency-Key on the API's POSTs (docs/api.md): the key a token sent, a hash of the request it came
-- with, and what that request made. Written in the transaction that made it; kept a day.
CREATE TABLE api_idempotency (
    token_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    resource_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, key)
);
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);
