-- 020_answer_cache.sql - the answers of the aggregates and of dashboards
-- with data, shared by every worker of every host (answer_cached(),
-- sql/functions/15_answer_cache.sql).
--
-- One row per query (id: the MD5 of its key, which may be longer than an
-- index entry can be) and token (agg_token()) it was computed under, with
-- its body and the call that computes it again. A token names one second
-- and one version of the data, so a row is worth nothing once its second
-- has passed: the maintenance job deletes the rows older than a few seconds
-- (answer_cache_prune()). A query has at most a few rows: the one of this
-- second, and the one of the next second that the aggregates group's
-- `answers` job computed ahead for a query asked in each of the last two
-- seconds (answer_warm()); asked says whether a request asked for a row,
-- and only rows that were asked are computed ahead again. Unlogged: a
-- cache writes no WAL, and a crash empties it, which costs one computation
-- per query.
CREATE UNLOGGED TABLE answer_cache (
    id        uuid        NOT NULL,
    token     text        NOT NULL,
    key       text        NOT NULL,
    body      text        NOT NULL,
    call      text        NOT NULL,        -- answer_cached()'s call and arguments
    a1        text,
    a2        text,
    asked     boolean     NOT NULL,        -- false: computed ahead, not asked for yet
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (id, token)
);
-- Bodies are JSON of a few to a few hundred KiB, read far more often than
-- written: kept uncompressed, so that a read copies them and nothing more.
ALTER TABLE answer_cache ALTER COLUMN body SET STORAGE EXTERNAL;
-- Every row is replaced within seconds: vacuum often.
ALTER TABLE answer_cache SET (autovacuum_vacuum_scale_factor = 0,
                              autovacuum_vacuum_threshold = 1000,
                              toast.autovacuum_vacuum_scale_factor = 0,
                              toast.autovacuum_vacuum_threshold = 1000);

COMMENT ON TABLE answer_cache IS 'aggregate answers computed once per query, data version and second for all workers (answer_cached())';

-- end of 020
