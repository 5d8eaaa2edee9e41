-- 021_rollup_minutes.sql - the fleet's executions per minute: what a read
-- takes at the partial 5-minute edges of its range instead of raw rows.
--
-- A range rarely starts or ends on a 5-minute boundary ("from" one second
-- on, every request a new one): its edges were read from the raw rows, up
-- to 5 minutes of them, grouped and their latencies sketched on every
-- call. At 10,000,000 executions over 30 days that was ~580 rows and
-- ~0.4 ms of a 1 ms summary, the one part of its cost that grows with the
-- data. With minutes, an edge reads at most 4 rows of this table and less
-- than a minute of raw rows.
--
-- Only the fleet (dims 0, no filter): filtered reads and series per agent
-- or model read their edges raw as before (a filter makes them a fraction
-- of the rows). A minute row is a sum of raw rows, not of deltas (deltas
-- are per 5 minutes): rollup_refresh() marks every 5-minute bucket it
-- folds stale (rollup_1m_stale), after it took the bucket's deltas, and
-- makes the minutes of the 64 latest stale buckets again from their raw
-- rows, in the same transaction; the next refreshes make the rest (a
-- late batch scattered over 30 days would otherwise have a fold read
-- every raw row of those days). So the minutes of a bucket are exact
-- whenever it has no pending delta and is not stale, and a read uses them
-- only then (rollup_rows(), sql/functions/12).
CREATE TABLE rollup_1m (LIKE rollup_5m INCLUDING ALL);
ALTER TABLE rollup_1m ADD CHECK (dims = 0);
CREATE TABLE rollup_1m_stale (
    bucket timestamptz PRIMARY KEY            -- a 5-minute bucket whose minutes are to be made again
);
COMMENT ON TABLE rollup_1m IS 'the fleet''s executions per minute (UTC), from the raw rows of each 5-minute bucket folded (dims 0 only)';
COMMENT ON TABLE rollup_1m_stale IS '5-minute buckets folded whose minutes (rollup_1m) are not made again yet';

-- The minutes of the executions already there, from the raw rows (the
-- repeatable functions of this database are those of before this file;
-- rollup_raw_sql() is among them whenever executions has rows).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM executions) THEN
        EXECUTE 'INSERT INTO rollup_1m SELECT 0, x.* FROM ('
                || rollup_raw_sql('executions', $i$interval '1 minute'$i$, '0', 'true', 'true')
                || ') x';
    END IF;
END $$;

-- end of 021
