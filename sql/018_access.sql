-- 018_access.sql - who may call the API, and what they wrote through it.
--
-- api_keys: one row per key. The secret is never stored: key_hash is the
-- SHA-256 of the whole key as the client sends it (fcgi/auth.c), the
-- lookup of every request not answered from a worker's one-second cache is
-- one probe of its unique index. prefix keeps the first characters of the
-- key ("fdk_AbCd1234") so that people can tell keys apart in a list. A
-- deleted key is gone: every worker refuses it within a second (the cache
-- keeps an answer at most that long). The role says which routes a key may
-- call (fcgi/auth.h has the matrix).
CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    role       text        NOT NULL CHECK (role IN ('viewer', 'editor', 'ingest', 'admin', 'metrics')),
    key_hash   bytea       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    prefix     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    created_by uuid
);
COMMENT ON TABLE api_keys IS 'API keys: a name, a role, the SHA-256 of the secret (never the secret), an optional expiry';
CREATE INDEX api_keys_created_idx ON api_keys (created_at, id);

-- api_key_usage: when a key was last used, coarse (written at most once a
-- minute per key, by the lookup itself). Apart from api_keys so that a key
-- in use does not rewrite its key row, and so that what changes with every
-- minute of use is one small row.
CREATE TABLE api_key_usage (
    key_id       uuid        PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    last_used_at timestamptz NOT NULL
);

-- audit_log: every write through the API that succeeded (a 2xx or 3xx
-- answer), inserted by the worker in the transaction of the write itself,
-- so that a write and its record commit or vanish together. Append-only: a
-- trigger (sql/functions/29_access.sql) refuses updates, and deletes but
-- those of audit_expire() (the retention, FLEETDASH_AUDIT_RETENTION_DAYS).
-- key_name and role are copied: the record outlives its key. resource_id
-- is the object the path names (its last {id}) or the one a POST created
-- (its Location); version_before / version_after the ETag versions of a
-- versioned object (dashboards, budgets, alert rules) the write changed.
CREATE TABLE audit_log (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    at             timestamptz NOT NULL DEFAULT now(),
    key_id         uuid,
    key_name       text,
    role           text,
    method         text        NOT NULL,
    path           text        NOT NULL,
    resource_id    text,
    status         integer     NOT NULL,
    request_id     text,
    version_before integer,
    version_after  integer
);
COMMENT ON TABLE audit_log IS 'Every successful write through the API: who, what, when; append-only';
CREATE INDEX audit_log_at_idx ON audit_log (at, id);
CREATE INDEX audit_log_key_idx ON audit_log (key_id, at, id);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_id, at, id);
