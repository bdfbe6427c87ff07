# Start and stop a throwaway PostgreSQL cluster on 127.0.0.1 (sourced by .ci/run).
# Exports API_PLUGIN_TEST_PG_URL for the postgres test environment, and
# API_PLUGIN_TEST_PG_CTL, a command that takes `stop` or `start`, for the fault tests
# that stop the server under load and start it again.
# The ports here and in pgbouncer.sh lie below Linux's ephemeral range (32768-60999):
# a port in it may be some client socket's local port at the moment a server binds.
PG_PORT=${PG_PORT:-15432}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_DATA=${PG_DATA:-/tmp/api_plugin_pg}

start_postgres() {
  rm -rf "$PG_DATA" && mkdir -p "$PG_DATA" && chown postgres:postgres "$PG_DATA"
  su postgres -c "$PG_BIN/initdb -D $PG_DATA -A trust -U postgres" >/dev/null
  cat >> "$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '/tmp'
max_connections = 200
fsync = off
CONF
  cat > "$PG_DATA/ctl.sh" <<CTL
#!/bin/sh
# usage: ctl.sh stop|start — fast stop (aborts open transactions), or start and wait
case "\$1" in
  stop) exec su postgres -c "$PG_BIN/pg_ctl -s -D $PG_DATA -m fast -w stop" ;;
  start) exec su postgres -c "$PG_BIN/pg_ctl -s -D $PG_DATA -l $PG_DATA/server.log -w start" ;;
esac
exit 2
CTL
  chmod +x "$PG_DATA/ctl.sh"
  "$PG_DATA/ctl.sh" start
  export API_PLUGIN_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  export API_PLUGIN_TEST_PG_ADDRESS="postgres@127.0.0.1:$PG_PORT/postgres"
  export API_PLUGIN_TEST_PG_CTL="$PG_DATA/ctl.sh"
}

stop_postgres() {
  su postgres -c "$PG_BIN/pg_ctl -s -D $PG_DATA -m immediate stop" >/dev/null 2>&1 || true
}
