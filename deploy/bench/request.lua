-- wrk script for deploy/bench/identity and deploy/bench/audit: one kind of request per run, chosen
-- by the environment (secrets come from the environment, never argv). Every answer is checked: its status must be
-- BENCH_EXPECT and, with BENCH_EXPECT_BODY, its body must contain that text. Only answers that
-- pass count towards the rate; the others are counted as "unexpected" (the first one's status is
-- reported), so a broken run cannot report a fast but meaningless number. 4xx answers are not
-- errors here when they are the expected status (wrk's own "errors_status" counts every >= 400).
--
-- Env:
--   BENCH_METHOD        GET or POST (default GET)
--   BENCH_PATH          request path (default /health/live)
--   BENCH_BODY          request body (optional)
--   BENCH_CONTENT_TYPE  Content-Type of the body (optional)
--   BENCH_AUTH          Authorization header value, e.g. "Basic …" or "Bearer …" (optional)
--   BENCH_TOKEN_FILE    file with one bearer token per line: each request carries the next token
--                       (overrides BENCH_AUTH); thread i of BENCH_THREADS uses only its own
--                       contiguous slice, so a token comes back only after every other token of
--                       the whole file was sent once (no server-side cache can keep them all).
--                       A line "TOKEN PATH" sends that token to its own path (e.g. each patient's
--                       token to a search about that patient).
--   BENCH_PATH_FILE     instead: file with one request path per line, rotated the same way, each
--                       request with BENCH_AUTH
--   BENCH_THREADS       the -t of this run (needed with either file)
--   BENCH_EXPECT        the expected status (default 200)
--   BENCH_EXPECT_BODY   text every answer must contain (optional)
--
-- Every request is built once in init() (one per line of the thread's slice), so the client
-- does the same work per request in every mode: request() only picks the next prepared string.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

local function env(name, default)
   local v = os.getenv(name)
   if v == nil or v == "" then return default end
   return v
end

local prepared = {}
local pos = 0
local expect_status
local expect_body

-- Globals (not local): done() reads them per thread with thread:get().
n_ok = 0
n_unexpected = 0
first_unexpected = 0
nreq = 0

local function build(auth, path)
   local headers = {}
   local body = env("BENCH_BODY", nil)
   local ctype = env("BENCH_CONTENT_TYPE", nil)
   if ctype then headers["Content-Type"] = ctype end
   if auth then headers["Authorization"] = auth end
   return wrk.format(env("BENCH_METHOD", "GET"), path or env("BENCH_PATH", "/health/live"), headers, body)
end

-- This thread's contiguous slice of a file's non-empty lines.
local function slice(file, name)
   local nthreads = tonumber(env("BENCH_THREADS", ""))
   if not nthreads or nthreads < 1 then error("BENCH_THREADS (wrk -t) is required with " .. name) end
   local lines = {}
   for line in io.lines(file) do
      if line ~= "" then lines[#lines + 1] = line end
   end
   local per = math.floor(#lines / nthreads)
   if per < 1 then error(name .. " has fewer lines than threads") end
   local out = {}
   for i = (tid or 0) * per + 1, ((tid or 0) + 1) * per do out[#out + 1] = lines[i] end
   return out
end

function init(args)
   expect_status = tonumber(env("BENCH_EXPECT", "200"))
   expect_body = env("BENCH_EXPECT_BODY", nil)
   local tokens, paths = env("BENCH_TOKEN_FILE", nil), env("BENCH_PATH_FILE", nil)
   if tokens then
      for _, line in ipairs(slice(tokens, "BENCH_TOKEN_FILE")) do
         local token, path = line:match("^(%S+)%s+(%S+)$")
         prepared[#prepared + 1] = build("Bearer " .. (token or line), path)
      end
   elseif paths then
      for _, path in ipairs(slice(paths, "BENCH_PATH_FILE")) do
         prepared[#prepared + 1] = build(env("BENCH_AUTH", nil), path)
      end
   else
      prepared[1] = build(env("BENCH_AUTH", nil))
   end
   -- Start at a random place in the slice: runs after the first do not replay the same order.
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   pos = math.random(0, #prepared - 1)
   nreq = #prepared
end

function request()
   pos = pos % nreq + 1
   return prepared[pos]
end

function response(status, headers, body)
   if status == expect_status and (not expect_body or (body and string.find(body, expect_body, 1, true))) then
      n_ok = n_ok + 1
   else
      n_unexpected = n_unexpected + 1
      if first_unexpected == 0 then first_unexpected = status end
   end
end

function done(summary, latency, requests)
   local ok, unexpected, first, distinct = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      ok = ok + (thread:get("n_ok") or 0)
      unexpected = unexpected + (thread:get("n_unexpected") or 0)
      if first == 0 then first = thread:get("first_unexpected") or 0 end
      distinct = distinct + (thread:get("nreq") or 0)
   end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      'BENCH {"requests":%d,"ok":%d,"unexpected":%d,"first_unexpected_status":%d,"distinct_requests":%d,' ..
      '"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
      '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_timeout":%d,"status_ge_400":%d}\n',
      summary.requests, ok, unexpected, first, distinct, seconds, ok / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, latency.mean / 1000,
      e.connect, e.read, e.write, e.timeout, e.status))
end
