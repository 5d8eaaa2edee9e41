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
-- computed wait for that computation instead of repeating it. So that they
-- need not wait at every turn of the second, the aggregates group's
-- `answers` job computes the next second's answer of a query asked
-- every second shortly before that second starts (answer_warm()).

-- answer_cache_find(id, token, key, ask) - the body stored for a query
-- under a token, or NULL; with ask the row is marked asked. By the primary
-- key, always: the table swings between empty and thousands of rows within
-- seconds, and a plan kept for the session that was made while it was
-- nearly empty scanned it whole (at 10M, under 1,000 uncached summaries a
-- second: ~1,400 rows read twice per request, ~18 % of the database's
-- time). enable_seqscan off holds for this lookup alone.
CREATE OR REPLACE FUNCTION answer_cache_find(p_id uuid, p_token text, p_key text, p_ask boolean)
RETURNS text LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $$
DECLARE
    v_body text;
    v_asked boolean;
BEGIN
    SELECT c.body, c.asked INTO v_body, v_asked FROM answer_cache c
     WHERE c.id = p_id AND c.token = p_token AND c.key = p_key;
    IF FOUND AND p_ask AND NOT v_asked THEN
        UPDATE answer_cache c SET asked = true WHERE c.id = p_id AND c.token = p_token AND NOT c.asked;
    END IF;
    RETURN v_body;
END $$;

-- answer_cached(key, have, call, a1, a2) - (token, body) of the query named
-- key, whose body is the json of call, a SQL expression of $1 and $2 (a1 and
-- a2, as text), such as 'agg_summary($1::jsonb)'. body is NULL when token is
-- have (the caller holds that answer already). Otherwise the body stored
-- under the current token (computed by another caller, or ahead of its
-- second by answer_warm(); the row is then marked asked), else computed
-- now: under an advisory lock per key and token (the first caller
-- computes, the others wait and then read its row), in ONE statement with
-- its token, so that the two always belong together. Errors of call
-- (UF422, UF404) are raised as they are and nothing is stored. VOLATILE:
-- each statement sees what committed before it, so that a caller that
-- waited sees the row of the one it waited for.
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
    FOR i IN 1..2 LOOP
        body := answer_cache_find(v_id, token, p_key, true);
        IF body IS NOT NULL THEN
            RETURN;
        END IF;
        EXIT WHEN i = 2;
        -- 'answ' (0x616e7377): the lock class of this cache
        PERFORM pg_advisory_xact_lock(1634627447, hashtext(p_key || ' ' || token));
    END LOOP;
    EXECUTE format('SELECT agg_token(), (%s)::text', p_call) INTO token, body USING p_a1, p_a2;
    IF body IS NOT NULL THEN
        INSERT INTO answer_cache AS c (id, token, key, body, call, a1, a2, asked)
        VALUES (v_id, token, p_key, body, p_call, p_a1, p_a2, true)
        ON CONFLICT ON CONSTRAINT answer_cache_pkey DO UPDATE SET asked = true;
    END IF;
END $$;

-- answer_warm_due(limit) - the queries worth computing ahead now: asked in
-- this second (agg_now()) and in the one before under the same data (their
-- data part of the token is the same: nothing changed across the turn of
-- the second, so the next second's answer will likely be asked under the
-- data there is now), and not yet computed for the next second. A query
-- asked once (another range every request) is never among them.
CREATE OR REPLACE FUNCTION answer_warm_due(p_limit integer)
RETURNS TABLE (key text, call text, a1 text, a2 text)
LANGUAGE sql STABLE AS $$
    SELECT c.key, c.call, c.a1, c.a2
      FROM answer_cache c,
           (SELECT extract(epoch FROM agg_now())::bigint AS s) t
     WHERE c.asked AND c.token LIKE t.s || '/%'
       AND EXISTS (SELECT 1 FROM answer_cache o
                    WHERE o.id = c.id AND o.asked
                      AND o.token = (t.s - 1) || substr(c.token, strpos(c.token, '/')))
       AND NOT EXISTS (SELECT 1 FROM answer_cache w
                        WHERE w.id = c.id AND w.token LIKE (t.s + 1) || '/%')
     ORDER BY c.stored_at
     LIMIT p_limit
$$;

-- answer_warm(key, call, a1, a2) - computes the answer of key as a request
-- of the NEXT second will ask for it (agg_now() one second on, through the
-- setting fleetdash.agg_now for this transaction only) and stores it under
-- that second's token, not asked: a request of that second under the same
-- data then finds it (answer_cached()) instead of computing it while the
-- others wait. Exact: the token names the data the answer was computed
-- from; a write before the request moves the request's token and the row
-- is never read. Under the same lock per key and token as answer_cached().
-- True when it stored an answer; false when one was there already, or the
-- call refused (UF404: the dashboard is gone; UF422).
CREATE OR REPLACE FUNCTION answer_warm(p_key text, p_call text, p_a1 text DEFAULT NULL,
                                       p_a2 text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_id uuid := md5(p_key)::uuid;
    v_token text;
    v_body text;
BEGIN
    PERFORM set_config('fleetdash.agg_now',
                       extract(epoch FROM agg_now() + interval '1 second')::text, true);
    v_token := agg_token();
    PERFORM pg_advisory_xact_lock(1634627447, hashtext(p_key || ' ' || v_token));
    IF answer_cache_find(v_id, v_token, p_key, false) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT agg_token(), (%s)::text', p_call) INTO v_token, v_body USING p_a1, p_a2;
    IF v_body IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO answer_cache (id, token, key, body, call, a1, a2, asked)
    VALUES (v_id, v_token, p_key, v_body, p_call, p_a1, p_a2, false)
    ON CONFLICT (id, token) DO NOTHING;
    RETURN FOUND;
EXCEPTION WHEN SQLSTATE 'UF404' OR SQLSTATE 'UF422' THEN
    RETURN false;
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
