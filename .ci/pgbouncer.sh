# Start and stop a PgBouncer in transaction-pooling mode in front of the PostgreSQL that
# .ci/postgres.sh started (sourced by .ci/run after start_postgres). Exports
# API_PLUGIN_TEST_PGBOUNCER_URL: the same database as API_PLUGIN_TEST_PG_URL, reached
# through the pooler, as Airflow's Helm chart deploys it, and
# API_PLUGIN_TEST_PGBOUNCER_ADDRESS, that URL without its scheme, which tox's pgbouncer
# environment gives each driver's scheme (postgresql+psycopg://, postgresql+psycopg2://).
# The two timeouts are those docs/hosting.rst recommends: a query waiting for a server
# connection that cannot be made fails after query_wait_timeout (default 120 s, which
# would hold a worker through a whole outage), and after a failed login PgBouncer tries
# the server again after server_login_retry (default 15 s, refusing every client
# meanwhile).
PGB_PORT=${PGB_PORT:-56432}
PGB_DIR=${PGB_DIR:-/tmp/api_plugin_pgbouncer}

start_pgbouncer() {
  rm -rf "$PGB_DIR" && mkdir -p "$PGB_DIR"
  echo '"postgres" ""' > "$PGB_DIR/users.txt"
  cat > "$PGB_DIR/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_DIR/users.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
server_reset_query =
query_wait_timeout = 2
server_login_retry = 1
ignore_startup_parameters = extra_float_digits,options
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
INI
  chown -R postgres:postgres "$PGB_DIR"
  su postgres -c "pgbouncer -d $PGB_DIR/pgbouncer.ini"
  for _ in $(seq 50); do
    pg_isready -q -h 127.0.0.1 -p "$PGB_PORT" && break
    sleep 0.1
  done
  export API_PLUGIN_TEST_PGBOUNCER_ADDRESS="postgres@127.0.0.1:$PGB_PORT/postgres"
  export API_PLUGIN_TEST_PGBOUNCER_URL="postgresql://$API_PLUGIN_TEST_PGBOUNCER_ADDRESS"
}

stop_pgbouncer() {
  [ -f "$PGB_DIR/pgbouncer.pid" ] && kill "$(cat "$PGB_DIR/pgbouncer.pid")" 2>/dev/null || true
}
