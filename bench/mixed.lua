-- wrk script for bench/soak.sh: a mixed load of 70 % GET /protected, 20 % GET /user,
-- 5 % POST /token/refresh and 5 % POST /login, in a fixed 20-request cycle (so the shares are
-- exact, not random), on the URL's host (its path is ignored).
--
-- Refresh tokens are single-use (a second use ends the session), so as in refresh.lua each wrk
-- thread keeps a FIFO pool of unused refresh tokens: a refresh takes one out, and every 2xx answer
-- carrying a `refresh_token` (refresh and login answers alike) puts its token in, up to
-- POOL_MAX tokens (the rest are dropped: a client that logged in and never refreshes). No token
-- is ever sent twice.
--
-- Configured through the environment (tokens never appear on a command line):
--   ACCESS_TOKEN         bearer token for /protected and /user (required)
--   REFRESH_TOKENS_FILE  one unused refresh token a line, to seed the pools (optional)
--   LOGIN_BODY           JSON body of POST /login (required)
--   REFRESH_THREADS      wrk's -t (default 1): thread i of N takes every N-th seed token
--   POOL_MAX             tokens kept per thread (default 256)
-- On completion prints the anchors' WRK_RESULT line plus
--   protected=N user=N refresh=N login=N  requests sent of each kind
--   starved=N   refreshes sent as /protected because the pool was empty (should be 0)

local access = os.getenv("ACCESS_TOKEN") or ""
local login_body = os.getenv("LOGIN_BODY") or ""
local tokens_file = os.getenv("REFRESH_TOKENS_FILE")
local pool_max = tonumber(os.getenv("POOL_MAX") or "256") or 256

-- p = /protected, u = /user, r = refresh, l = login: 14 + 4 + 1 + 1 of 20.
local cycle = { "p", "p", "u", "p", "p", "r", "p", "u", "p", "p", "p", "u", "p", "l", "p", "p", "u", "p", "p", "p" }
local slot = 0

local pool = {}
local head, tail = 1, 0
-- Globals, so that done() (in wrk's main Lua state) can read them with thread:get().
pool_size = 0
starved = 0
sent_p, sent_u, sent_r, sent_l = 0, 0, 0, 0

local function push(token)
  if tail - head + 1 >= pool_max then return end
  tail = tail + 1
  pool[tail] = token
  pool_size = tail - head + 1
end

local function pop()
  if head > tail then return nil end
  local token = pool[head]
  pool[head] = nil
  head = head + 1
  pool_size = tail - head + 1
  return token
end

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local index = thread_index or 0
  local count = tonumber(os.getenv("REFRESH_THREADS") or "1") or 1
  slot = index * 7  -- threads start at different points of the cycle
  if tokens_file and tokens_file ~= "" then
    local f = assert(io.open(tokens_file, "r"), "cannot open REFRESH_TOKENS_FILE " .. tokens_file)
    local i = 0
    for line in f:lines() do
      if line ~= "" then
        if i % count == index then push(line) end
        i = i + 1
      end
    end
    f:close()
  end
end

local bearer = { ["Authorization"] = "Bearer " .. access }
local json = { ["Content-Type"] = "application/json" }

function request()
  slot = slot % #cycle + 1
  local kind = cycle[slot]
  if kind == "r" then
    local token = pop()
    if token then
      sent_r = sent_r + 1
      return wrk.format("POST", "/token/refresh", { ["Authorization"] = "Bearer " .. token })
    end
    if thread_index ~= nil then starved = starved + 1 end
    kind = "p"
  end
  if kind == "l" then
    sent_l = sent_l + 1
    return wrk.format("POST", "/login", json, login_body)
  elseif kind == "u" then
    sent_u = sent_u + 1
    return wrk.format("GET", "/user", bearer)
  end
  sent_p = sent_p + 1
  return wrk.format("GET", "/protected", bearer)
end

function response(status, headers, body)
  if status >= 200 and status < 300 and #body > 0 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then push(token) end
  end
end

function done(summary, latency, requests)
  local dur = summary.duration
  local rps = 0
  if dur > 0 then rps = summary.requests / (dur / 1e6) end
  local e = summary.errors
  local n = { p = 0, u = 0, r = 0, l = 0, starved = 0 }
  for _, t in ipairs(threads) do
    n.p = n.p + (tonumber(t:get("sent_p")) or 0)
    n.u = n.u + (tonumber(t:get("sent_u")) or 0)
    n.r = n.r + (tonumber(t:get("sent_r")) or 0)
    n.l = n.l + (tonumber(t:get("sent_l")) or 0)
    n.starved = n.starved + (tonumber(t:get("starved")) or 0)
  end
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d protected=%d user=%d refresh=%d login=%d starved=%d\n",
    summary.requests, dur, rps,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, n.p, n.u, n.r, n.l, n.starved))
end
