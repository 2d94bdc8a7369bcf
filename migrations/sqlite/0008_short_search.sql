-- A search of one or two characters (common for Chinese names) has no trigram: the single characters and
-- pairs of each nickname, lower-cased, are indexed here instead, kept by the triggers below, so such a
-- search is an index lookup too. Positions 1–256 cover any nickname WeChat allows. The triggers insert
-- distinct pairs (an upsert on users would override an OR IGNORE here with its own conflict policy).
CREATE TABLE gram_positions (i INTEGER PRIMARY KEY);
WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 256)
INSERT INTO gram_positions (i) SELECT i FROM n;

CREATE TABLE user_grams (
    gram TEXT NOT NULL,
    user_rowid INTEGER NOT NULL,
    PRIMARY KEY (gram, user_rowid)
) WITHOUT ROWID;

INSERT OR IGNORE INTO user_grams (gram, user_rowid)
    SELECT substr(lower(users.nickname), p.i, s.n), users.rowid
    FROM users, gram_positions AS p, (SELECT 1 AS n UNION ALL SELECT 2) AS s
    WHERE users.nickname IS NOT NULL AND p.i + s.n - 1 <= length(users.nickname);

CREATE TRIGGER user_grams_insert AFTER INSERT ON users WHEN NEW.nickname IS NOT NULL
BEGIN
    INSERT INTO user_grams (gram, user_rowid)
        SELECT DISTINCT substr(lower(NEW.nickname), p.i, s.n), NEW.rowid
        FROM gram_positions AS p, (SELECT 1 AS n UNION ALL SELECT 2) AS s
        WHERE p.i + s.n - 1 <= length(NEW.nickname);
END;
CREATE TRIGGER user_grams_delete AFTER DELETE ON users WHEN OLD.nickname IS NOT NULL
BEGIN
    DELETE FROM user_grams WHERE user_rowid = OLD.rowid AND gram IN (
        SELECT substr(lower(OLD.nickname), p.i, s.n)
        FROM gram_positions AS p, (SELECT 1 AS n UNION ALL SELECT 2) AS s
        WHERE p.i + s.n - 1 <= length(OLD.nickname));
END;
CREATE TRIGGER user_grams_update AFTER UPDATE OF nickname ON users
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
