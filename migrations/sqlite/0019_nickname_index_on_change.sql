-- The nickname indexes (0007, 0008) were rewritten on every update that named the nickname column, and
-- a sign-in's upsert always names it (keeping the stored nickname when WeChat sends none): each sign-in
-- deleted and re-inserted the follower's full-text entry and every one of its one- and two-character
-- grams. Now only a nickname that changed is re-indexed.
DROP TRIGGER users_nickname_update;
CREATE TRIGGER users_nickname_update AFTER UPDATE OF nickname ON users
WHEN OLD.nickname IS NOT NEW.nickname
BEGIN
    INSERT INTO users_nickname (users_nickname, rowid, nickname)
        SELECT 'delete', OLD.rowid, OLD.nickname WHERE OLD.nickname IS NOT NULL;
    INSERT INTO users_nickname (rowid, nickname)
        SELECT NEW.rowid, NEW.nickname WHERE NEW.nickname IS NOT NULL;
END;

DROP TRIGGER user_grams_update;
CREATE TRIGGER user_grams_update AFTER UPDATE OF nickname ON users
WHEN OLD.nickname IS NOT NEW.nickname
BEGIN
    DELETE FROM user_grams WHERE user_rowid = OLD.rowid AND gram IN (
        SELECT substr(lower(OLD.nickname), p.i, s.n)
        FROM gram_positions AS p, (SELECT 1 AS n UNION ALL SELECT 2) AS s
        WHERE OLD.nickname IS NOT NULL AND p.i + s.n - 1 <= length(OLD.nickname));
    INSERT INTO user_grams (gram, user_rowid)
        SELECT DISTINCT substr(lower(NEW.nickname), p.i, s.n), NEW.rowid
        FROM gram_positions AS p, (SELECT 1 AS n UNION ALL SELECT 2) AS s
        WHERE NEW.nickname IS NOT NULL AND p.i + s.n - 1 <= length(NEW.nickname);
END;
