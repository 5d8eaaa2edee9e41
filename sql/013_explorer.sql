-- 013_explorer.sql - what GET /executions needs of executions (functions:
-- functions/26_explorer.sql), and of problems for GET /problems.
--
-- executions_latency_idx: sort=slowest reads the slowest runs of a range by
-- walking this index from its top and keeping those of the range, instead
-- of sorting every run of the range (30 days of the demo fleet: millions of
-- rows). The keyset is (coalesce(latency_ms, -1), id), runs without a
-- latency last. It costs each insert one more index entry (~3 us, see
-- 001's note); sort=costliest has no index of its own (it sorts the runs
-- of its range; narrow ranges or an agent keep it cheap).
CREATE INDEX executions_latency_idx ON executions ((coalesce(latency_ms, -1)), id);

-- GET /problems without a status filter: newest sighting first.
CREATE INDEX problems_last_seen_idx ON problems (last_seen_at, id);
