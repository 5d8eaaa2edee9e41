"""test_migrate.py - sql/migrate.sh on a scratch database of the stack's
PostgreSQL, run from a copy of sql/: numbered files once, then the
repeatable sql/functions/*.sql, recorded with their checksums; a second run
is a no-op; an edited repeatable file is applied again with every file
after it, and only those; after a new numbered migration every repeatable
file is applied again; sql/dev/ is never applied."""

import hashlib
import pathlib
import shutil
import subprocess
import uuid

import psycopg2
import pytest

SQL = pathlib.Path(__file__).resolve().parents[2] / "sql"


@pytest.fixture
def scratch(stack, tmp_path):
    params = dict(host=stack.env["PGHOST"], port=stack.env["PGPORT"],
                  user=stack.env.get("PGUSER", "postgres"))
    name = "fd_migrate_%s" % uuid.uuid4().hex[:8]
    admin(params, 'CREATE DATABASE "%s"' % name)
    shutil.copytree(SQL, tmp_path / "sql")
    yield params, name, tmp_path / "sql"
    admin(params, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def admin(params, statement):
    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def migrate(scratch):
    params, name, sql = scratch
    url = "host=%(host)s port=%(port)s user=%(user)s" % params + " dbname=" + name
    done = subprocess.run(["bash", str(sql / "migrate.sh"), url], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [line.split()[-1] for line in done.stdout.splitlines()
            if line.startswith("migrate: applied ")], done.stdout + done.stderr


def rows(scratch, statement):
    params, name, _ = scratch
    with psycopg2.connect(dbname=name, **params) as conn, conn.cursor() as cur:
        cur.execute(statement)
        result = cur.fetchall()
    conn.close()
    return result


def repeatables(sql):
    return ["functions/" + p.name for p in sorted((sql / "functions").glob("*.sql"))]


def test_a_new_database_gets_every_file_once_and_no_demo_functions(scratch):
    sql = scratch[2]
    applied, _ = migrate(scratch)
    numbered = [p.name for p in sorted(sql.glob("[0-9][0-9][0-9]_*.sql"))]
    assert applied == numbered + repeatables(sql)
    assert [r[0] for r in rows(scratch, "SELECT file FROM schema_repeatables ORDER BY file")] \
        == repeatables(sql)
    assert rows(scratch, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'demo\\_%'")[0][0] == 0
    assert rows(scratch, "SELECT to_regtype('demo_fleet_summary')") == [(None,)]
    again, output = migrate(scratch)
    assert again == [] and "up to date" in output


def test_an_edited_repeatable_file_is_applied_again_with_the_files_after_it(scratch):
    sql = scratch[2]
    migrate(scratch)
    files = repeatables(sql)
    edited = sql / files[2]
    edited.write_text(edited.read_text() + "\n-- an edit\n")
    applied, _ = migrate(scratch)
    assert applied == files[2:]
    checksum = rows(scratch, "SELECT checksum FROM schema_repeatables WHERE file = '%s'" % files[2])
    assert checksum == [(hashlib.sha256(edited.read_bytes()).hexdigest(),)]


def test_a_new_migration_applies_every_repeatable_file_again(scratch):
    sql = scratch[2]
    migrate(scratch)
    (sql / "999_scratch.sql").write_text("CREATE TABLE scratch_table (x integer);\n")
    applied, _ = migrate(scratch)
    assert applied == ["999_scratch.sql"] + repeatables(sql)


def test_a_failing_repeatable_file_is_rolled_back_and_stops_the_run(scratch):
    params, name, sql = scratch
    migrate(scratch)
    files = repeatables(sql)
    broken = sql / files[1]
    broken.write_text(broken.read_text() + "\nSELECT no_such_function();\n")
    url = "host=%(host)s port=%(port)s user=%(user)s" % params + " dbname=" + name
    done = subprocess.run(["bash", str(sql / "migrate.sh"), url], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1
    assert files[1] + " failed" in done.stderr
    assert "applied" not in done.stdout                  # nothing after it was tried
