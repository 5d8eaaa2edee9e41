"""test_readme.py - the README's "Using it (curl)" section works as written:
its shell block runs with bash, in order, from the repository's folder (the
sample files it names are shipped in docs/examples/), against the test stack,
every variable it uses set by it, every call answered 2xx or 304 and each
`-> NNN` it announces; its transcript block answers what it shows."""

import os
import re
import subprocess

import pytest

from support import ROOT

pytestmark = pytest.mark.ingest     # it reports executions and registers agents

README = ROOT / "README.md"
README_URL = "http://127.0.0.1:8080"

# Wraps curl for the run: each call also dumps its response headers into a
# file of its own, named by the clock so that the files sort in call order
# (calls inside $(...) run in subshells, which share no counter).
CURL_WRAPPER = r'''
curl() {
    command curl -D "$CURL_HEADERS/$(date +%s%N)" "$@"
}
'''


def section_blocks(name):
    """The fenced code blocks of the README section `## name`: [(info, text)]."""
    text = README.read_text()
    start = text.index("\n## %s\n" % name)
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(r"^```(\w*)\n(.*?)^```$", section, re.S | re.M)


def script_block():
    blocks = [body for info, body in section_blocks("Using it (curl)") if info == "sh"]
    assert len(blocks) == 1, "one ```sh block in Using it (curl)"
    return blocks[0]


def transcript_block():
    blocks = [body for info, body in section_blocks("Using it (curl)")
              if info == "" and body.startswith("$ ")]
    assert len(blocks) == 1, "one $ transcript in Using it (curl)"
    return blocks[0]


def expected_statuses(script):
    """For each curl call of script, in order: the status a comment
    announces for it (`-> NNN` in a comment line before it, or in a comment
    at the end of its own line), or None."""
    expected, pending = [], None
    for line in script.splitlines():
        if line.lstrip().startswith("#"):
            code, comment = "", line
        else:
            code, _, comment = line.partition("# ")
        announced = re.search(r"-> ([1-5][0-9][0-9])\b", comment)
        if not code.strip():
            if announced:
                pending = int(announced.group(1))
            continue
        for index in range(len(re.findall(r"\bcurl ", code))):
            status = pending
            if index == 0 and announced:
                status = int(announced.group(1))
            expected.append(status)
            pending = None
    return expected


def run_bash(stack, tmp_path, script):
    """Runs script with bash -euo pipefail from the repository's folder, the
    README's URL replaced by the stack's; returns (the statuses of its curl
    calls in order, stdout)."""
    headers = tmp_path / "headers"
    headers.mkdir()
    env = dict(os.environ, CURL_HEADERS=str(headers))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", CURL_WRAPPER + script.replace(README_URL,
                                                                         stack.base_url)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:],
                                    result.stdout[-2000:])
    statuses = []
    for dump in sorted(headers.iterdir(), key=lambda path: int(path.name)):
        status_lines = re.findall(r"^HTTP/[0-9.]+ ([0-9]{3})", dump.read_text(), re.M)
        statuses.append(int(status_lines[-1]))      # after any 100 Continue
    return statuses, result.stdout


def test_readme_names_sample_files_that_are_shipped():
    files = re.findall(r"@(docs/examples/[\w.-]+)", script_block())
    assert files
    for name in files:
        assert (ROOT / name).is_file(), name


def test_readme_walkthrough_runs_in_order_and_every_call_succeeds(stack, tmp_path, db):
    # the walk-through names its receiver, rule and budget (names are
    # unique): a run before this one on the same database made them
    db.execute_retrying("DELETE FROM alert_rules; DELETE FROM receivers; DELETE FROM budgets")
    script = script_block()
    statuses, _ = run_bash(stack, tmp_path, script)
    expected = expected_statuses(script)
    assert len(statuses) == len(expected), (statuses, expected)
    assert all(status in (200, 201, 204, 304) for status in statuses), statuses
    for index, (status, want) in enumerate(zip(statuses, expected)):
        assert want is None or status == want, "call %d: %d, README says %d" % (
            index + 1, status, want)
    assert db.count_dashboards() == 1     # its own is deleted; the default stays


def test_readme_walkthrough_announces_the_statuses_it_expects():
    expected = expected_statuses(script_block())
    assert {201, 200, 304, 204} <= set(expected), expected


def test_readme_transcript_answers_what_it_shows(stack, tmp_path):
    lines = transcript_block().splitlines()
    command, shown = lines[0][2:], "".join(line.lstrip() for line in lines[1:])
    setup = script_block().split("\n\n", 1)[0]       # B= and J=
    statuses, stdout = run_bash(stack, tmp_path, setup + "\n" + command)
    pattern = ".*?".join(re.escape(part) for part in shown.split("\u2026"))
    assert re.fullmatch(pattern, stdout.strip()), stdout
    assert statuses == [json_status(shown)]


def json_status(text):
    return int(re.search(r'"status":([0-9]+)', text).group(1))
