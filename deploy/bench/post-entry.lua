-- wrk script for deploy/bench/ledger: single-entry POST /entries, a fresh idempotency key per
-- request (run prefix + thread + counter), ledger-shaped entries of about 150 bytes.
-- Env: SERVICE_TOKEN (bearer token), BENCH_PREFIX (unique per run).

local counter = 0
local threads = {}
local prefix = os.getenv("BENCH_PREFIX") or tostring(os.time())
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

-- base64 of 32 random bytes: 42 free characters, one of 16 (the last 4 bits are 0), "=".
local function random_b64()
   local t = {}
   for i = 1, 42 do
      local r = math.random(1, 64)
      t[i] = b64chars:sub(r, r)
   end
   local r = math.random(0, 15) * 4 + 1
   t[43] = b64chars:sub(r, r)
   t[44] = "="
   return table.concat(t)
end

local pool = {}
local headers

function init(args)
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   for i = 1, 512 do pool[i] = random_b64() end
   headers = {
      ["Authorization"] = "Bearer " .. os.getenv("SERVICE_TOKEN"),
      ["Content-Type"] = "application/json",
   }
end

function request()
   counter = counter + 1
   local body = string.format(
      '{"entries":[{"idempotencyKey":"%s-%d-%d","entry":{"v":1,"commitment":"%s","ref":"%s","time":"%s"}}]}',
      prefix, tid or 0, counter, pool[math.random(1, 512)], pool[math.random(1, 512)],
      os.date("!%Y-%m-%dT%H:%M:%S.000Z"))
   return wrk.format("POST", "/entries", headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"mean_ms":%.3f,' ..
      '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000,
      e.connect, e.read, e.write, e.status, e.timeout))
end
