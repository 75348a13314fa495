-- wrk script: POST with the access token in a cookie and the double-submit CSRF header
-- (Flask-JWT-Extended's cookie location: `access_token_cookie` + `csrf_access_token`, and
-- `X-CSRF-TOKEN` set to the latter on state-changing methods).
--
-- Configured through the environment (tokens never appear on a command line):
--   COOKIE_FILE  two lines: the Cookie header's value, then the CSRF token (required)
-- Every request is the same: one token, as `bench.sh` sends one bearer token. On completion prints
-- the same WRK_RESULT line as the anchors' bench.lua.

local path = os.getenv("COOKIE_FILE")
local f = assert(io.open(path or "", "r"), "cannot open COOKIE_FILE")
local cookie = f:read("*l")
local csrf = f:read("*l")
f:close()
assert(cookie and cookie ~= "" and csrf and csrf ~= "", "COOKIE_FILE needs two lines: cookies, CSRF token")

wrk.method = "POST"
wrk.headers["Cookie"] = cookie
wrk.headers["X-CSRF-TOKEN"] = csrf

function done(summary, latency, requests)
  local dur = summary.duration
  local rps = 0
  if dur > 0 then rps = summary.requests / (dur / 1e6) end
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, dur, rps,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
