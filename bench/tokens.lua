-- wrk script: GET with a different bearer token on each request, round-robin over a file.
--
-- With one token, every request probes the same revocation-list buckets, which stay in cache;
-- real traffic carries a new `jti` (and many `sid`s) on every request. Cycling through tens of
-- thousands of tokens makes each lookup touch cold memory, as it would in production.
--
-- Configured through the environment (tokens never appear on a command line):
--   ACCESS_TOKENS_FILE  one access token per line (required)
-- On completion prints the same WRK_RESULT line as the anchors' bench.lua, plus
--   tokens=N  how many distinct tokens were cycled through

local tokens = {}
local next_index = 1

function init(args)
  local path = os.getenv("ACCESS_TOKENS_FILE")
  local f = assert(io.open(path or "", "r"), "cannot open ACCESS_TOKENS_FILE")
  for line in f:lines() do
    if line ~= "" then tokens[#tokens + 1] = "Bearer " .. line end
  end
  f:close()
  token_count = #tokens -- global: read by done() through thread:get()
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  if #tokens == 0 then return wrk.format() end -- wrk's request-shape probe (before init)
  local value = tokens[next_index]
  next_index = next_index % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = value })
end

function done(summary, latency, requests)
  local dur = summary.duration
  local rps = 0
  if dur > 0 then rps = summary.requests / (dur / 1e6) end
  local e = summary.errors
  local n = 0
  for _, t in ipairs(threads) do n = n + (tonumber(t:get("token_count")) or 0) end
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d tokens=%d\n",
    summary.requests, dur, rps,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, n))
end
