-- A reply rule can ask the account's bot (docs/bot.md): its `reply` is then the fallback, sent when the
-- bot fails or answers something unusable.
ALTER TABLE reply_rules ADD COLUMN bot_url TEXT;
-- How long WeChat's passive answer waits for the bot; past it the bot's answer is sent later as a
-- customer-service message.
ALTER TABLE reply_rules ADD COLUMN bot_budget_ms INTEGER NOT NULL DEFAULT 2000;
