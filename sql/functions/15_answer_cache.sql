-- 15_answer_cache.sql - one computation of an answer for every worker of
-- every host: answer_cached() and its upkeep, answer_cache_prune().
--
-- Repeatable (sql/README.md): applied again whenever it changes.
--
-- An answer of the aggregates group (and a dashboard's data) depends only on
-- the data visible and on agg_now(), both named by agg_token(): the same
-- token, the same answer. A worker keeps its last answer per query with its
-- token (fcgi/cache.c) and sends that token along; the answer_cache table
-- (sql/020) keeps the answer of the current token for everybody. So a
-- popular query is computed once per second and data version, however many
-- workers and hosts serve it, and the workers that ask while it is being
-- computed wait for that computation instead of repeating it.

-- answer_cached(key, have, call, a1, a2) - (token, body) of the query named
-- key, whose body is the json of call, a SQL expression of $1 and $2 (a1 and
-- a2, as text), such as 'agg_summary($1::jsonb)'. body is NULL when token is
-- have (the caller holds that answer already). Otherwise the body stored
-- under the current token, else computed now: under an advisory lock per key
-- (the first caller computes, the others wait and then read its row), in ONE
-- statement with its token, so that the two always belong together. Errors
-- of call (UF422, UF404) are raised as they are and nothing is stored.
-- VOLATILE: each statement sees what committed before it, so that a caller
-- that waited sees the row of the one it waited for.
CREATE OR REPLACE FUNCTION answer_cached(p_key text, p_have text, p_call text,
                                         p_a1 text DEFAULT NULL, p_a2 text DEFAULT NULL,
                                         OUT token text, OUT body text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_id uuid := md5(p_key)::uuid;
BEGIN
    token := agg_token();
    IF token = p_have THEN
        RETURN;
    END IF;
    SELECT c.body INTO body FROM answer_cache c
     WHERE c.id = v_id AND c.token = answer_cached.token AND c.key = p_key;
    IF FOUND THEN
        RETURN;
    END IF;
    -- 'answ' (0x616e7377): the lock class of this cache
    PERFORM pg_advisory_xact_lock(1634627447, hashtext(p_key));
    SELECT c.body INTO body FROM answer_cache c
     WHERE c.id = v_id AND c.token = answer_cached.token AND c.key = p_key;
    IF FOUND THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT agg_token(), (%s)::text', p_call) INTO token, body USING p_a1, p_a2;
    IF body IS NOT NULL THEN
        INSERT INTO answer_cache AS c (id, key, token, body)
        VALUES (v_id, p_key, token, body)
        ON CONFLICT (id) DO UPDATE
            SET key = excluded.key, token = excluded.token, body = excluded.body,
                stored_at = excluded.stored_at;
    END IF;
END $$;

-- answer_cache_prune() - deletes the answers no token can name any more
-- (stored more than 5 seconds ago; a token names one second); returns how
-- many. The maintenance job calls it every round.
CREATE OR REPLACE FUNCTION answer_cache_prune() RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM answer_cache WHERE stored_at < clock_timestamp() - interval '5 seconds'
                  RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- end of 15_answer_cache
