-- A search of one or two characters (common for Chinese names) has no trigram: the single characters and
-- pairs of each nickname, lower-cased, are indexed instead, so such a search is an index lookup too.
CREATE FUNCTION nickname_grams(nickname text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$
    SELECT coalesce(array_agg(DISTINCT gram), '{}')
    FROM (SELECT substr(lower(nickname), i, n) AS gram
          FROM generate_series(1, length(nickname)) AS i, (VALUES (1), (2)) AS sizes (n)
          WHERE i + n - 1 <= length(nickname)) AS grams
$$;
CREATE INDEX users_nickname_grams ON users USING gin (nickname_grams(nickname));
