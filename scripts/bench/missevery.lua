-- wrk script: one hot key, with a miss (a path never asked before) every
-- BENCH_MISS_EVERY requests of each wrk thread, spread over its
-- connections, so that keep-alive connections meet misses between hits
-- (the listener fast path's take-back: HITPATH.md §4).
--   BENCH_HOT         the hot path (default /static/hot.json)
--   BENCH_MISS_EVERY  N (default 10)
--   BENCH_RUN         a prefix that keeps the misses of one run apart
local hot = os.getenv("BENCH_HOT") or "/static/hot.json"
local every = tonumber(os.getenv("BENCH_MISS_EVERY") or "10")
local run = os.getenv("BENCH_RUN") or "0"
local tid, n = 0, 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function request()
  n = n + 1
  if n % every == 0 then
    return wrk.format("GET", "/static/miss/" .. run .. "-" .. tid .. "-" .. n)
  end
  return wrk.format("GET", hot)
end
