#!/usr/bin/python3
"""gen_executions.py - deterministic executions for the ingest benchmark.

Usage: gen_executions.py ndjson N FILE   N lines of NDJSON (compact, ~200 bytes each)
       gen_executions.py ordered N FILE  the same, started_at rising through the hour
       gen_executions.py batch N FILE    one JSON array of N executions
       gen_executions.py one FILE        one JSON object
Agents are named bench-00 .. bench-49; runs started within the last hour (live
ingest: orchestrators report what just ran), in a scattered order; "ordered"
sends them as a live stream does, oldest first.
"""
import datetime
import json
import sys

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
MODELS = ["claude-sonnet", "claude-haiku", "gpt-4o", "gpt-4o-mini"]


def execution(i, ordered_of=0):
    # live ingest: runs that started within the last hour; with ordered_of
    # (the number of runs) the i-th starts i / ordered_of through the hour
    ago = 3599 - i * 3600 // ordered_of if ordered_of else (i * 7919) % 3600
    started = NOW - datetime.timedelta(seconds=ago)
    failed = i % 10 == 0
    e = {"agent_name": "bench-%02d" % (i % 50), "model": MODELS[i % 4],
         "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "latency_ms": 200 + (i * 37) % 9000,
         "status": "failed" if failed else "succeeded", "prompt_tokens": 900 + i % 300,
         "completion_tokens": 150 + i % 90, "cost_usd": 0.0042,
         "evaluation": {"passed": not failed and i % 13 != 0, "score": 0.8},
         "metadata": {"region": "eu-west-1" if i % 2 else "us-east-1"}}
    if failed:
        e["error"] = {"category": "timeout", "message": "deadline exceeded"}
    return e


def main():
    form = sys.argv[1]
    if form == "one":
        with open(sys.argv[2], "w") as f:
            json.dump(execution(1), f, separators=(",", ":"))
        return
    n, path = int(sys.argv[2]), sys.argv[3]
    with open(path, "w") as f:
        if form == "batch":
            json.dump([execution(i) for i in range(n)], f, separators=(",", ":"))
        else:
            for i in range(n):
                e = execution(i, n if form == "ordered" else 0)
                f.write(json.dumps(e, separators=(",", ":")))
                f.write("\n")


if __name__ == "__main__":
    main()
