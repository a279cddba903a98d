-- wrk script for deploy/bench/ledger: GET /proofs/inclusion?index=<random>&size=<BENCH_SIZE>.
-- Env: BENCH_SIZE (a checkpoint's tree size).

local size = tonumber(os.getenv("BENCH_SIZE") or "")
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   if not size or size < 1 then error("BENCH_SIZE must be a tree size >= 1") end
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function request()
   return wrk.format("GET", string.format("/proofs/inclusion?index=%d&size=%d", math.random(0, size - 1), size))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"mean_ms":%.3f,' ..
      '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.mean / 1000,
      e.connect, e.read, e.write, e.status, e.timeout))
end
