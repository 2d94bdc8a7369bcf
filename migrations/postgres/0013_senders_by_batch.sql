-- Senders' rows are now brought up to date by the message writer, one statement per batch
-- (store/messages.rs, touch_senders), instead of by a trigger per message: the trigger was more than
-- half of the database's CPU per message.
DROP TRIGGER messages_touch_sender ON messages;
DROP FUNCTION messages_touch_sender();
