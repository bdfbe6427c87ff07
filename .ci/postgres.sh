# Start and stop a throwaway PostgreSQL cluster on 127.0.0.1 (sourced by .ci/run).
# Exports API_PLUGIN_TEST_PG_URL for the postgres test environment.
PG_PORT=${PG_PORT:-55432}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_DATA=${PG_DATA:-/tmp/api_plugin_pg}

start_postgres() {
  rm -rf "$PG_DATA" && mkdir -p "$PG_DATA" && chown postgres:postgres "$PG_DATA"
  su postgres -c "$PG_BIN/initdb -D $PG_DATA -A trust -U postgres" >/dev/null
  su postgres -c "$PG_BIN/pg_ctl -s -D $PG_DATA -l $PG_DATA/server.log -w start \
    -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp -c max_connections=200 -c fsync=off'"
  export API_PLUGIN_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  export API_PLUGIN_TEST_PG_CTL="su postgres -c '$PG_BIN/pg_ctl -s -D $PG_DATA -l $PG_DATA/server.log -w'"
}

stop_postgres() {
  su postgres -c "$PG_BIN/pg_ctl -s -D $PG_DATA -m immediate stop" >/dev/null 2>&1 || true
}
