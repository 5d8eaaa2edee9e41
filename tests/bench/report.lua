-- report.lua - wrk script: optional request body from the environment
-- (BENCH_BODY, or BENCH_BODY_FILE for large ones), optional paths to go
-- through in turn (BENCH_PATHS_FILE, one per line), and one machine-readable
-- line at the end: RESULT req/s p50_ms p99_ms errors requests
local method = os.getenv("BENCH_METHOD")
if method ~= nil and method ~= "" then
    wrk.method = method
    wrk.body = os.getenv("BENCH_BODY")
    local path = os.getenv("BENCH_BODY_FILE")
    if path ~= nil and path ~= "" then
        local f = assert(io.open(path, "rb"))
        wrk.body = f:read("*a")
        f:close()
    end
    wrk.headers["Content-Type"] = "application/json"
end

-- the stack's API key (tests/bench/schema.sh exports it)
local key = os.getenv("FLEETDASH_KEY")
if key ~= nil and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
end

local paths_file = os.getenv("BENCH_PATHS_FILE")
if paths_file ~= nil and paths_file ~= "" then
    local paths, next_path = {}, 0
    for line in io.lines(paths_file) do
        paths[#paths + 1] = line
    end
    request = function()
        next_path = next_path % #paths + 1
        return wrk.format(nil, paths[next_path])
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    local errors = e.connect + e.read + e.write + e.status + e.timeout
    io.write(string.format("RESULT %.0f %.3f %.3f %d %d\n",
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        errors, summary.requests))
end
