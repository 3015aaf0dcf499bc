-- wrk script of bench/server_bench.py: one request shape per run, read from files the bench
-- writes (mode 0600, in its 0700 temp dir) so no secret or token is on a command line.
--
-- BENCH_CONF: line 1 method, line 2 path, line 3 body (may be empty), then "Name: value"
--             header lines.
-- BENCH_TOKENS (refresh mode only): one refresh token per line, one per connection.
--
-- Static mode sets wrk.method/body/headers: wrk builds the request once and sends it on
-- every connection, with no Lua call per request (the cheapest generator). Refresh mode
-- defines request() and response(): each response's new refresh token goes back to a
-- pool, and the next request (in practice the same connection's, since wrk calls
-- response() and then request() for that connection) takes it, so every refresh token is
-- used exactly once. Run with one thread (-t 1): the pool lives in that thread's Lua state.

local conf = assert(io.open(os.getenv("BENCH_CONF"), "r"))
local method = conf:read("*l")
local path = conf:read("*l")
local body = conf:read("*l") or ""
local headers = {}
for line in conf:lines() do
  local name, value = line:match("^([^:]+): (.*)$")
  if name then
    headers[name] = value
  end
end
conf:close()

ok, bad, starved, bad_status = 0, 0, 0, 0

local tokens_file = os.getenv("BENCH_TOKENS")
if tokens_file == nil or tokens_file == "" then
  wrk.method = method
  wrk.path = path
  wrk.body = body ~= "" and body or nil
  wrk.headers = headers
else
  local pool = {}
  for line in io.lines(tokens_file) do
    if line ~= "" then
      table.insert(pool, line)
    end
  end

  -- wrk calls request() once in the main thread before the run, to count pipelined
  -- requests (script_verify_request), and never sends that one: it must not use a token.
  local verified = false

  function request()
    if not verified then
      verified = true
      return wrk.format(method, path, headers, body .. "unsent")
    end
    local token = table.remove(pool)
    if token == nil then
      -- A chain broke (a non-200 answer): this request is refused and counted as bad.
      starved = starved + 1
      token = "exhausted"
    end
    return wrk.format(method, path, headers, body .. token)
  end

  function response(status, _, resp_body)
    if status == 200 then
      local token = resp_body:match('"refresh_token":"([^"]+)"')
      if token then
        table.insert(pool, token)
        ok = ok + 1
        return
      end
    end
    bad = bad + 1
    bad_status = status
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, _)
  local t_ok, t_bad, t_starved, t_status = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    t_ok = t_ok + thread:get("ok")
    t_bad = t_bad + thread:get("bad")
    t_starved = t_starved + thread:get("starved")
    t_status = math.max(t_status, thread:get("bad_status"))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d,"ok":%d,"bad":%d,"starved":%d,"bad_status":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, t_ok, t_bad, t_starved, t_status))
end
