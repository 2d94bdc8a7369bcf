-- Follower search on part of a nickname (three characters or more) reads a trigram index instead of every
-- follower: an FTS5 table over users.nickname, kept by the triggers below. Only a change to the nickname
-- touches it: a message updating its sender's row does not.
CREATE VIRTUAL TABLE users_nickname USING fts5 (
    nickname, content = 'users', content_rowid = 'rowid', tokenize = 'trigram'
);
INSERT INTO users_nickname (rowid, nickname) SELECT rowid, nickname FROM users WHERE nickname IS NOT NULL;

CREATE TRIGGER users_nickname_insert AFTER INSERT ON users WHEN NEW.nickname IS NOT NULL
BEGIN
    INSERT INTO users_nickname (rowid, nickname) VALUES (NEW.rowid, NEW.nickname);
END;
CREATE TRIGGER users_nickname_delete AFTER DELETE ON users WHEN OLD.nickname IS NOT NULL
BEGIN
    INSERT INTO users_nickname (users_nickname, rowid, nickname) VALUES ('delete', OLD.rowid, OLD.nickname);
END;
CREATE TRIGGER users_nickname_update AFTER UPDATE OF nickname ON users
BEGIN
    INSERT INTO users_nickname (users_nickname, rowid, nickname)
        SELECT 'delete', OLD.rowid, OLD.nickname WHERE OLD.nickname IS NOT NULL;
    INSERT INTO users_nickname (rowid, nickname)
        SELECT NEW.rowid, NEW.nickname WHERE NEW.nickname IS NOT NULL;
END;
