-- wrk script: an endpoint mix of reads on example_etl (seed_pg.py's databases), each
-- thread stopping after its share of BENCH_REQUESTS answers (the footprint run).
local prefix = "/api/experimental"
local date = "2025-01-01T00:00:00%2B00:00"
local paths = {
  prefix .. "/test",
  prefix .. "/dags/example_etl/dag_runs?limit=100",
  prefix .. "/dags/example_etl/dag_runs/" .. date,
  prefix .. "/dags/example_etl/tasks/load",
  prefix .. "/dags/example_etl/dag_runs/" .. date .. "/tasks/load",
  prefix .. "/dags/example_etl/paused",
  prefix .. "/latest_runs",
  prefix .. "/pools",
  prefix .. "/pools/default_pool",
}
local limit = math.floor(tonumber(os.getenv("BENCH_REQUESTS") or "10000") / 2)
local sent = 0
local answered = 0

request = function()
  sent = sent + 1
  return wrk.format("GET", paths[(sent % #paths) + 1])
end

response = function(status, headers, body)
  answered = answered + 1
  if answered >= limit then
    wrk.thread:stop()
  end
end
