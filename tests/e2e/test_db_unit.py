"""test_db_unit.py - runs tests/unit/test_db.c (the worker's connection code:
any number of prepared statements, again after a reconnect) against the test
stack's database, building it first when needed."""

import os
import subprocess

from support import ROOT

BINARY = ROOT / "build" / "unit" / "test_db"


def test_the_connection_unit_tests_pass_against_the_stack_database(stack):
    build = subprocess.run(["make", "-s", "build/unit/test_db"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    env = dict(os.environ, FLEETDASH_TEST_DATABASE_URL=stack.env["DATABASE_URL"])
    result = subprocess.run([str(BINARY)], env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 test(s) run" in output and "SKIPPED" not in output, output
