-- wrk script: POST /token/refresh where every request rotates its refresh token.
--
-- keycard's refresh tokens are single-use: presenting one twice ends the whole session. So no
-- token may ever be sent twice, and every request needs a token nobody has used yet.
--
-- wrk's response() callback does not say which connection answered, so the script does not try
-- to keep one chain per connection. It keeps one FIFO pool of unused tokens per wrk thread
-- instead: request() takes a token out of the pool, response() puts the token of the new pair
-- back in. Each token is thereby sent exactly once; the sessions simply move between
-- connections. With one request in flight per connection (wrk does not pipeline dynamic
-- requests), pool + in-flight = the tokens the thread was seeded with, so seeding at least as many
-- sessions as connections keeps the pool from running dry. A lost token (timeout, error) shrinks
-- the pool by one and is never retried.
--
-- Configured through the environment (tokens never appear on a command line):
--   REFRESH_TOKENS_FILE  one refresh token per line, each from its own login (required)
--   REFRESH_THREADS      wrk's -t (default 1): thread i of N takes every N-th token
-- The path is the URL's: wrk -s refresh.lua http://127.0.0.1:8081/token/refresh
-- On completion prints the same WRK_RESULT line as the anchors' bench.lua, plus
--   pool_left=N  tokens left unused in the pools (seeded - in flight at the end - lost)
--   starved=N    requests sent without a token because a pool was empty (must be 0)
--   no_token=N   2xx responses without a refresh_token in the body (must be 0)

local tokens_file = os.getenv("REFRESH_TOKENS_FILE")

local pool = {}       -- FIFO of unused refresh tokens: pool[head .. tail]
local head, tail = 1, 0
-- Globals, so that done() (in wrk's main Lua state) can read them with thread:get().
pool_size = 0         -- tokens in the pool
starved = 0           -- requests sent without a token because the pool was empty
no_token = 0          -- 2xx responses whose body carried no refresh_token

local function push(token)
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

-- Runs in the main Lua state, once per thread: hand each thread its share of the tokens.
function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local index = thread_index or 0
  local all = {}
  if tokens_file and tokens_file ~= "" then
    local f = assert(io.open(tokens_file, "r"), "cannot open REFRESH_TOKENS_FILE " .. tokens_file)
    for line in f:lines() do
      if line ~= "" then table.insert(all, line) end
    end
    f:close()
  end
  -- Thread i (0-based) of REFRESH_THREADS (= wrk's -t) takes lines i+1, i+1+count, ...
  local count = tonumber(os.getenv("REFRESH_THREADS") or "1") or 1
  for i = 1, #all do
    if (i - 1) % count == index then push(all[i]) end
  end
end

wrk.method = "POST"

function request()
  local token = pop()
  if token == nil then
    -- Only the main state's request-shape probe (before init) or a drained pool gets here;
    -- the latter makes a 401, which shows up as non2xx.
    if thread_index ~= nil then starved = starved + 1 end
    return wrk.format("POST", wrk.path, {})
  end
  return wrk.format("POST", wrk.path, { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then push(token) else no_token = no_token + 1 end
  end
end

function done(summary, latency, requests)
  local dur = summary.duration
  local rps = 0
  if dur > 0 then rps = summary.requests / (dur / 1e6) end
  local e = summary.errors
  local left, hungry, tokenless = 0, 0, 0
  for _, t in ipairs(threads) do
    left = left + (tonumber(t:get("pool_size")) or 0)
    hungry = hungry + (tonumber(t:get("starved")) or 0)
    tokenless = tokenless + (tonumber(t:get("no_token")) or 0)
  end
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d pool_left=%d starved=%d no_token=%d\n",
    summary.requests, dur, rps,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, left, hungry, tokenless))
end
