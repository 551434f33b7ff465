-- Random GETs over BENCH_KEYS distinct URIs (hit-only once warmed).
local keys = tonumber(os.getenv("BENCH_KEYS") or "10000")
local seq = os.getenv("BENCH_SEQUENTIAL") == "1"
local i = 0
function setup(thread) thread:set("id", math.random(1, 1000000)) end
function init() math.randomseed(id) end
function request()
  if seq then
    i = i % keys + 1
    return wrk.format("GET", "/item/" .. i)
  end
  return wrk.format("GET", "/item/" .. math.random(1, keys))
end
