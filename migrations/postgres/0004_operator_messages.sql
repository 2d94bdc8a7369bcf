-- Operators answer followers by hand: a `custom` outbox job carries the customer-service message to send
-- (`payload`, JSON in message/custom/send's shape) and the name of the operator who wrote it (`author`).
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('reply', 'user_info', 'custom'));
ALTER TABLE outbox ADD COLUMN payload TEXT;
ALTER TABLE outbox ADD COLUMN author TEXT;
