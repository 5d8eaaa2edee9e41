-- 020_answer_cache.sql - the answers of the aggregates and of dashboards
-- with data, shared by every worker of every host (answer_cached(),
-- sql/functions/15_answer_cache.sql).
--
-- One row per query (id: the MD5 of its key, which may be longer than an
-- index entry can be) with the token (agg_token()) it was computed under and
-- its body. A token names one second and one version of the data, so a row
-- is worth nothing once its second has passed: the maintenance job deletes
-- the rows older than a few seconds (answer_cache_prune()). Unlogged: a
-- cache writes no WAL, and a crash empties it, which costs one computation
-- per query.
CREATE UNLOGGED TABLE answer_cache (
    id        uuid        PRIMARY KEY,
    key       text        NOT NULL,
    token     text        NOT NULL,
    body      text        NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp()
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
