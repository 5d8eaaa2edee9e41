-- report.lua - wrk script: optional POST body from the environment, and one
-- machine-readable line at the end: RESULT req/s p50_ms p99_ms errors requests
local method = os.getenv("BENCH_METHOD")
if method ~= nil and method ~= "" then
    wrk.method = method
    wrk.body = os.getenv("BENCH_BODY")
    wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
    local e = summary.errors
    local errors = e.connect + e.read + e.write + e.status + e.timeout
    io.write(string.format("RESULT %.0f %.3f %.3f %d %d\n",
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        errors, summary.requests))
end
