-- wrk script: every request triggers a new run (unique execution date per thread+count).
-- BENCH_RUN_PREFIX and BENCH_DATE_OFFSET keep two servers on one database apart;
-- BENCH_API=v2 sends Airflow 3's v2 body (logical_date, dag_run_id) instead.
local counter = 0
local prefix = os.getenv("BENCH_RUN_PREFIX") or "bench"
local offset = tonumber(os.getenv("BENCH_DATE_OFFSET") or "0")
local v2 = os.getenv("BENCH_API") == "v2"
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tonumber(tid) or 0
end

request = function()
  counter = counter + 1
  local secs = offset + thread_id * 10000000 + counter
  local date = os.date("!%Y-%m-%dT%H:%M:%S+00:00", 1735689600 + secs)
  local run_id = prefix .. '_' .. thread_id .. "_" .. counter
  local body = '{"execution_date": "' .. date .. '", "run_id": "' .. run_id .. '"}'
  if v2 then
    body = '{"logical_date": "' .. date .. '", "dag_run_id": "' .. run_id .. '"}'
  end
  -- wrk.format replaces wrk.headers (the -H options, e.g. a bearer token) when given
  -- headers of its own: keep them.
  local headers = {["Content-Type"] = "application/json"}
  for name, value in pairs(wrk.headers) do
    if name ~= "Content-Type" then headers[name] = value end
  end
  return wrk.format("POST", nil, headers, body)
end
