-- wrk script for deploy/bench/records: one kind of FHIR request per run, chosen by BENCH_MODE
-- (the bearer token comes from the environment, never argv). Every answer is checked: only the
-- expected status (and body) counts towards the rate; the others are counted as "unexpected"
-- (the first one's status is reported), so a broken run cannot report a fast number.
--
-- Env:
--   BENCH_MODE           create | read | verify | search | decide | static
--   BENCH_AUTH           Authorization header value ("Bearer …")
--   BENCH_THREADS        the -t of this run: thread i uses only its own slice of the lists below
--   create: POST /fhir/DiagnosticReport, a valid report (~1 KB) per request
--   BENCH_STATUS         the reports' status (create; default preliminary, a technologist's)
--   BENCH_PATIENTS_FILE  one Patient id per line: the subjects, rotated (create, search)
--   BENCH_PERFORMER      reference of the performer, e.g. Practitioner/123 (create)
--   BENCH_PREFIX         unique per run: the reports' identifiers are PREFIX-thread-counter (create)
--   BENCH_LIMIT          optional (create): a thread stops after this many 201s; when every thread
--                        has, the run ends early (wrk itself only stops after -d)
--   BENCH_DONE_DIR       required with BENCH_LIMIT: an empty directory for the threads' done marks
--   BENCH_IDS_OUT        optional (create): done() writes the created ids there, one per line
--   read: GET /fhir/DiagnosticReport/{id}, 200
--   BENCH_IDS_FILE       one DiagnosticReport id per line, rotated
--   search: GET /fhir/DiagnosticReport?patient={id}&_count=20, 200 with a searchset Bundle
--   decide: POST /decisions (consent) {"actor": BENCH_ACTOR, "patient": "Patient/{id}", "action":
--           "read"}, rotating over BENCH_PATIENTS_FILE; 200 with "permit"
--   static: GET /health/live, 200 (the same HTTP server's cheapest answer: a baseline)
--
-- Read and search requests are built once in init(), one per id of the thread's slice, each
-- thread starting at a random place in its slice; create bodies are built per request (each
-- report needs its own identifier), from pools prepared in init().

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

local function lines(path)
   local out = {}
   for line in io.lines(path) do
      if line ~= "" then out[#out + 1] = line end
   end
   return out
end

-- This thread's contiguous slice of a list (at least one element).
local function slice(list, what)
   local nthreads = tonumber(env("BENCH_THREADS", ""))
   if not nthreads or nthreads < 1 then error("BENCH_THREADS (wrk -t) is required") end
   local per = math.floor(#list / nthreads)
   if per < 1 then error(what .. " has fewer lines than threads") end
   local first = (tid or 0) * per
   local out = {}
   for i = first + 1, first + per do out[#out + 1] = list[i] end
   return out
end

local mode
local headers
local prepared = {}
local pos = 0
local expect_status
local expect_body

-- create
local patients
local performer
local prefix
local limit
local done_dir
local counter = 0
local collect = false
local status_text

-- Globals (not local): done() reads them per thread with thread:get().
n_ok = 0
n_unexpected = 0
first_unexpected = 0
nreq = 0
ids = {}

local codes = {
   { "58410-2", "CBC panel - Blood by Automated count", "LAB" },
   { "24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma", "LAB" },
   { "57021-8", "CBC W Auto Differential panel - Blood", "LAB" },
   { "30746-2", "Portable XR Chest View", "RAD" },
   { "24627-2", "Chest CT", "RAD" },
   { "11502-2", "Laboratory report", "LAB" },
}
local words = {
   "no", "acute", "findings", "within", "normal", "limits", "mild", "increase", "compared", "with", "prior",
   "study", "recommend", "follow-up", "in", "six", "months", "stable", "appearance", "of", "the", "left",
   "right", "lobe", "values", "reference", "range", "slightly", "elevated", "unremarkable",
}
local texts = {}

local function sentence(n)
   local t = {}
   for i = 1, n do t[i] = words[math.random(1, #words)] end
   return table.concat(t, " ")
end

function init(args)
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   mode = env("BENCH_MODE", "")
   local auth = env("BENCH_AUTH", nil)
   if not auth then error("BENCH_AUTH is required") end
   headers = { ["Authorization"] = auth, ["Accept"] = "application/fhir+json" }
   if mode == "create" then
      expect_status = 201
      headers["Content-Type"] = "application/fhir+json"
      patients = slice(lines(env("BENCH_PATIENTS_FILE", "")), "BENCH_PATIENTS_FILE")
      performer = env("BENCH_PERFORMER", nil)
      if not performer then error("BENCH_PERFORMER is required for create") end
      prefix = env("BENCH_PREFIX", tostring(os.time()))
      limit = tonumber(env("BENCH_LIMIT", ""))
      done_dir = env("BENCH_DONE_DIR", nil)
      if limit and not done_dir then error("BENCH_DONE_DIR is required with BENCH_LIMIT") end
      collect = env("BENCH_IDS_OUT", nil) ~= nil
      status_text = env("BENCH_STATUS", "preliminary")
      for i = 1, 64 do texts[i] = sentence(80) end   -- about 500 characters each
      nreq = #patients
   elseif mode == "read" then
      expect_status = 200
      expect_body = '"DiagnosticReport"'
      for _, id in ipairs(slice(lines(env("BENCH_IDS_FILE", "")), "BENCH_IDS_FILE")) do
         prepared[#prepared + 1] = wrk.format("GET", "/fhir/DiagnosticReport/" .. id, headers)
      end
   elseif mode == "verify" then
      expect_status = 200
      expect_body = '"valueCode":"verified"'
      for _, id in ipairs(slice(lines(env("BENCH_IDS_FILE", "")), "BENCH_IDS_FILE")) do
         prepared[#prepared + 1] = wrk.format("GET", "/fhir/DiagnosticReport/" .. id .. "/_history/1/$verify", headers)
      end
   elseif mode == "search" then
      expect_status = 200
      expect_body = '"searchset"'
      for _, id in ipairs(slice(lines(env("BENCH_PATIENTS_FILE", "")), "BENCH_PATIENTS_FILE")) do
         prepared[#prepared + 1] = wrk.format("GET", "/fhir/DiagnosticReport?patient=" .. id .. "&_count=20", headers)
      end
   elseif mode == "decide" then
      expect_status = 200
      expect_body = '"permit"'
      headers["Accept"] = "application/json"
      headers["Content-Type"] = "application/json"
      local actor = env("BENCH_ACTOR", nil)
      if not actor then error("BENCH_ACTOR is required for decide") end
      for _, id in ipairs(slice(lines(env("BENCH_PATIENTS_FILE", "")), "BENCH_PATIENTS_FILE")) do
         local body = string.format('{"actor":"%s","patient":"Patient/%s","action":"read"}', actor, id)
         prepared[#prepared + 1] = wrk.format("POST", "/decisions", headers, body)
      end
   elseif mode == "static" then
      expect_status = 200
      prepared[1] = wrk.format("GET", "/health/live", {})
   else
      error("BENCH_MODE must be create, read, verify, search, decide or static")
   end
   if #prepared > 0 then
      nreq = #prepared
      pos = math.random(0, #prepared - 1)
   end
end

local function report_body()
   counter = counter + 1
   local code = codes[math.random(1, #codes)]
   local day = os.time() - math.random(0, 365 * 86400)
   return string.format(
      '{"resourceType":"DiagnosticReport","status":"%s",' ..
      '"identifier":[{"system":"urn:medledger:bench","value":"%s-%d-%d"}],' ..
      '"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"%s"}]}],' ..
      '"code":{"coding":[{"system":"http://loinc.org","code":"%s","display":"%s"}],"text":"%s"},' ..
      '"subject":{"reference":"Patient/%s"},"effectiveDateTime":"%s","issued":"%s",' ..
      '"performer":[{"reference":"%s"}],"conclusion":"%s"}',
      status_text, prefix, tid or 0, counter, code[3], code[1], code[2], code[2],
      patients[math.random(1, #patients)], os.date("!%Y-%m-%dT%H:%M:%SZ", day),
      os.date("!%Y-%m-%dT%H:%M:%S.000Z", day + 3600), performer, texts[math.random(1, #texts)])
end

function request()
   if mode == "create" then
      return wrk.format("POST", "/fhir/DiagnosticReport", headers, report_body())
   end
   pos = pos % nreq + 1
   return prepared[pos]
end

local function exists(path)
   local f = io.open(path, "r")
   if f then f:close() return true end
   return false
end

-- Marks this thread done; the last thread to finish interrupts wrk (SIGINT, as Ctrl-C: wrk then
-- stops every thread and prints its summary) instead of letting it sleep until -d is over.
-- io.popen, not os.execute: system() ignores SIGINT in the caller while the command runs. The
-- signal is repeated in the background until wrk is gone: a SIGINT that lands on a worker thread
-- stops the workers but leaves wrk's main thread asleep for the rest of -d (seen once in a
-- seeding run).
local function finish()
   local mark = io.open(string.format("%s/done-%d", done_dir, tid or 0), "w")
   if mark then mark:close() end
   wrk.thread:stop()
   local nthreads = tonumber(env("BENCH_THREADS", "1"))
   for t = 0, nthreads - 1 do
      if not exists(string.format("%s/done-%d", done_dir, t)) then return end
   end
   local p = io.popen("(while kill -INT $PPID 2>/dev/null; do sleep 2; done) >/dev/null 2>&1 &")
   if p then p:close() end
end

local function location_id(headers)
   for k, v in pairs(headers) do
      if string.lower(k) == "location" then
         return string.match(v, "/DiagnosticReport/([^/]+)/_history/")
      end
   end
   return nil
end

function response(status, headers, body)
   if status == expect_status and (not expect_body or (body and string.find(body, expect_body, 1, true))) then
      if mode == "create" then
         local id = location_id(headers)
         if not id then
            n_unexpected = n_unexpected + 1
            if first_unexpected == 0 then first_unexpected = -1 end   -- 201 without a Location
            return
         end
         if collect then ids[#ids + 1] = id end
      end
      n_ok = n_ok + 1
      if limit and n_ok == limit then finish() end
   else
      n_unexpected = n_unexpected + 1
      if first_unexpected == 0 then first_unexpected = status end
   end
end

function done(summary, latency, requests)
   local ok, unexpected, first, distinct, written = 0, 0, 0, 0, 0
   local out
   local path = env("BENCH_IDS_OUT", nil)
   if path then out = assert(io.open(path, "w")) end
   for _, thread in ipairs(threads) do
      ok = ok + (thread:get("n_ok") or 0)
      unexpected = unexpected + (thread:get("n_unexpected") or 0)
      if first == 0 then first = thread:get("first_unexpected") or 0 end
      distinct = distinct + (thread:get("nreq") or 0)
      if out then
         for _, id in ipairs(thread:get("ids") or {}) do
            out:write(id, "\n")
            written = written + 1
         end
      end
   end
   if out then out:close() end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      'BENCH {"requests":%d,"ok":%d,"unexpected":%d,"first_unexpected_status":%d,"distinct_requests":%d,' ..
      '"ids_written":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
      '"mean_ms":%.3f,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_timeout":%d,' ..
      '"status_ge_400":%d}\n',
      summary.requests, ok, unexpected, first, distinct, written, seconds, ok / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, latency.mean / 1000,
      e.connect, e.read, e.write, e.timeout, e.status))
end
