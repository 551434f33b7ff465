-- wrk script for scripts/bench-origin.sh: one request shape per BENCH_MODE,
-- each from a random bench user (or conversation) with that user's token.
--   BENCH_FILE  lines "id lat lng token" (users) or "conv user token" (convs)
--   BENCH_MODE  suggestions | warm (every user once, in order) | location |
--               history | send
-- done() prints one line: "BENCH rps p50_ms p95_ms p99_ms requests errors".
local mode = os.getenv("BENCH_MODE") or "suggestions"
local file = os.getenv("BENCH_FILE")
local rows, n, i, run = {}, 0, 0, os.getenv("BENCH_RUN") or "0"
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
end

function init(args)
  for line in io.lines(file) do
    local t = {}
    for f in line:gmatch("%S+") do t[#t + 1] = f end
    rows[#rows + 1] = t
  end
  n = #rows
  math.randomseed(tid * 7919 + os.time())
  i = tid - 1 -- warm: threads interleave over the rows
end

local function pick()
  if mode == "warm" then
    i = i + 2
    return rows[(i % n) + 1]
  end
  return rows[math.random(1, n)]
end

local seq = 0
function request()
  local r = pick()
  if mode == "suggestions" or mode == "warm" then
    return wrk.format("GET", "/api/matches/suggestions?limit=50", { Authorization = "Bearer " .. r[4] })
  elseif mode == "location" then
    local lat = tonumber(r[2]) + (math.random() - 0.5) * 0.01
    local lng = tonumber(r[3]) + (math.random() - 0.5) * 0.01
    return wrk.format("PUT", "/api/users/me/location",
      { Authorization = "Bearer " .. r[4], ["Content-Type"] = "application/json" },
      string.format('{"lat":%.6f,"lng":%.6f}', lat, lng))
  elseif mode == "history" then
    return wrk.format("GET", "/api/conversations/" .. r[1] .. "/messages?limit=50", { Authorization = "Bearer " .. r[3] })
  elseif mode == "send" then
    seq = seq + 1
    return wrk.format("POST", "/api/conversations/" .. r[1] .. "/messages",
      { Authorization = "Bearer " .. r[3], ["Content-Type"] = "application/json" },
      string.format('{"body":"bench message %d","client_msg_id":"bench-%s-%d-%d"}', seq, run, tid, seq))
  end
  error("unknown BENCH_MODE " .. mode)
end

function done(summary, latency, requests)
  local e = summary.errors
  local errs = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format("BENCH %.1f %.3f %.3f %.3f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests, errs))
end
