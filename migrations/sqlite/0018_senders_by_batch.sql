-- Senders' rows are now brought up to date by the message writer, one statement per batch
-- (store/messages.rs, touch_senders), instead of by a trigger per message.
DROP TRIGGER messages_touch_sender;
