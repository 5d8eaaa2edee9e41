-- 29_access.sql - API keys and the audit log (tables in sql/018_access.sql).
--
-- Choices:
-- * A key is checked by the worker first (prefix, length, alphabet, CRC32
--   checksum: fcgi/auth.c), so that a typo costs no database read; only a
--   well-formed key is looked up here, by the SHA-256 the worker computed.
-- * A key's last use is written by its lookup, at most once a minute (the
--   WHERE of the upsert), so that reads write next to nothing.
-- * The audit record is inserted by the worker after the handler, in the
--   write's own transaction. The versions of a versioned object come from
--   the row triggers below, which note the first such row the transaction
--   changed in transaction-local settings (fleetdash.audit_*): one write
--   through the API changes one versioned object at most.

-- ===================================================================
-- Keys
-- ===================================================================

-- api_key_rows - the ApiKey object of the API (never the secret, never
-- its hash).
CREATE OR REPLACE VIEW api_key_rows AS
SELECT k.id, k.name, k.role, k.prefix, api_time(k.created_at) AS created_at,
       api_time(k.expires_at) AS expires_at, api_time(u.last_used_at) AS last_used_at,
       k.created_by
  FROM api_keys k
  LEFT JOIN api_key_usage u ON u.key_id = k.id;

-- api_key_check - the key whose secret hashes to p_hash: id, name, role,
-- expires_at (NULL: never), or no row. Notes its use when the last note is
-- a minute old or more.
CREATE OR REPLACE FUNCTION api_key_check(p_hash bytea)
RETURNS TABLE (id uuid, name text, role text, expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    k api_keys;
BEGIN
    SELECT * INTO k FROM api_keys WHERE key_hash = p_hash;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF k.expires_at IS NULL OR k.expires_at > now() THEN
        INSERT INTO api_key_usage AS u (key_id, last_used_at) VALUES (k.id, now())
        ON CONFLICT (key_id) DO UPDATE SET last_used_at = excluded.last_used_at
         WHERE u.last_used_at <= excluded.last_used_at - interval '1 minute';
    END IF;
    RETURN QUERY SELECT k.id, k.name, k.role, k.expires_at;
END $$;

-- api_key_create - POST /api-keys (and fleetdashd --new-key): the key row
-- of a secret the worker made. p_expires_at NULL: never expires; one in the
-- past is refused (UF422 on expires_at). Returns the ApiKey.
CREATE OR REPLACE FUNCTION api_key_create(p_name text, p_role text, p_expires_at timestamptz,
                                          p_hash bytea, p_prefix text, p_created_by uuid,
                                          OUT body json, OUT id uuid)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
        RAISE EXCEPTION USING ERRCODE = 'UF422', COLUMN = 'expires_at',
            MESSAGE = 'must be in the future';
    END IF;
    INSERT INTO api_keys (name, role, expires_at, key_hash, prefix, created_by)
    VALUES (p_name, p_role, p_expires_at, p_hash, p_prefix, p_created_by)
    RETURNING api_keys.id INTO id;
    SELECT row_to_json(r) INTO body FROM api_key_rows r WHERE r.id = api_key_create.id;
END $$;

-- api_key_delete - DELETE /api-keys/{id}: the key is gone (its audit
-- records keep its id and name). UF404 unknown. Returns the id.
CREATE OR REPLACE FUNCTION api_key_delete(p_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM api_keys WHERE api_keys.id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'UF404', MESSAGE = format('No API key %s.', p_id);
    END IF;
    RETURN p_id;
END $$;

-- ===================================================================
-- The audit log
-- ===================================================================

-- audit_note_version - row trigger of the versioned tables: the first row a
-- transaction changes is the one its audit record names the versions of
-- (before: NULL for an insert; after: NULL for a delete).
CREATE OR REPLACE FUNCTION audit_note_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_id text := CASE WHEN TG_OP = 'DELETE' THEN OLD.id::text ELSE NEW.id::text END;
BEGIN
    IF coalesce(current_setting('fleetdash.audit_id', true), '') = '' THEN
        PERFORM set_config('fleetdash.audit_id', row_id, true);
        PERFORM set_config('fleetdash.audit_before',
                           CASE WHEN TG_OP = 'INSERT' THEN '-' ELSE OLD.version::text END, true);
    END IF;
    IF current_setting('fleetdash.audit_id') = row_id THEN
        PERFORM set_config('fleetdash.audit_after',
                           CASE WHEN TG_OP = 'DELETE' THEN '-' ELSE NEW.version::text END, true);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dashboards_audit AFTER INSERT OR DELETE ON dashboards
    FOR EACH ROW EXECUTE FUNCTION audit_note_version();
CREATE OR REPLACE TRIGGER dashboards_audit_update AFTER UPDATE ON dashboards
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION audit_note_version();
CREATE OR REPLACE TRIGGER budgets_audit AFTER INSERT OR DELETE ON budgets
    FOR EACH ROW EXECUTE FUNCTION audit_note_version();
CREATE OR REPLACE TRIGGER budgets_audit_update AFTER UPDATE ON budgets
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION audit_note_version();
CREATE OR REPLACE TRIGGER alert_rules_audit AFTER INSERT OR DELETE ON alert_rules
    FOR EACH ROW EXECUTE FUNCTION audit_note_version();
CREATE OR REPLACE TRIGGER alert_rules_audit_update AFTER UPDATE ON alert_rules
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION audit_note_version();

-- audit_record - the worker's record of one successful write, in its
-- transaction (the versions from audit_note_version's notes).
CREATE OR REPLACE FUNCTION audit_record(p_key_id uuid, p_key_name text, p_role text,
                                        p_method text, p_path text, p_resource_id text,
                                        p_status integer, p_request_id text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO audit_log (key_id, key_name, role, method, path, resource_id, status, request_id,
                           version_before, version_after)
    VALUES (p_key_id, p_key_name, p_role, p_method, p_path, p_resource_id, p_status, p_request_id,
            nullif(nullif(current_setting('fleetdash.audit_before', true), ''), '-')::integer,
            nullif(nullif(current_setting('fleetdash.audit_after', true), ''), '-')::integer)
$$;

-- audit_rows - the AuditRecord object of the API.
CREATE OR REPLACE VIEW audit_rows AS
SELECT a.id, api_time(a.at) AS at, a.key_id, a.key_name, a.role, a.method, a.path,
       a.resource_id, a.status, a.request_id, a.version_before, a.version_after
  FROM audit_log a;

-- audit_append_only - the table's guard: no update ever; a delete only
-- from audit_expire() (which says so in a transaction-local setting).
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('fleetdash.audit_expiring', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (%, outside audit_expire())', TG_OP;
END $$;

CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

-- audit_expire - the retention: records older than p_days days go, at most
-- 10,000 a call (the maintenance job calls it hourly and again while it
-- removes a full batch). Returns how many went.
CREATE OR REPLACE FUNCTION audit_expire(p_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    removed integer;
BEGIN
    PERFORM set_config('fleetdash.audit_expiring', 'on', true);
    DELETE FROM audit_log
     WHERE id IN (SELECT id FROM audit_log
                   WHERE at < now() - make_interval(days => p_days)
                   ORDER BY at LIMIT 10000);
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('fleetdash.audit_expiring', 'off', true);
    RETURN removed;
END $$;
