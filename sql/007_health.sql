-- 007_health.sql - the heartbeats of the groups, which /readyz reads.
-- Every worker of a group that /readyz waits for moves its group's row on
-- its host every 5 s (fcgi/health.c); /readyz calls a group up while one
-- of its rows moved within 15 s. UNLOGGED: a beat writes no WAL and waits
-- for no flush, and a crash of the server only empties the table (the
-- next beats, 5 s later, fill it again).
CREATE UNLOGGED TABLE group_heartbeats (
    group_name text NOT NULL,
    host text NOT NULL,
    beat_at timestamptz NOT NULL,
    PRIMARY KEY (group_name, host)
);
