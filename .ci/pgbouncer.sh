# Start and stop PgBouncers in transaction-pooling mode in front of the PostgreSQL that
# .ci/postgres.sh started (sourced by .ci/run after start_postgres).
#
# start_pgbouncer: Debian 12's own package (1.18), as Airflow's Helm chart deploys a
# pooler. Exports API_PLUGIN_TEST_PGBOUNCER_URL: the same database as
# API_PLUGIN_TEST_PG_URL, reached through the pooler, and
# API_PLUGIN_TEST_PGBOUNCER_ADDRESS, that URL without its scheme, which tox's pgbouncer
# environment gives each driver's scheme (postgresql+psycopg://, postgresql+psycopg2://).
#
# build_preparing_pgbouncer, then start_preparing_pgbouncer: a PgBouncer that keeps
# track of its clients' prepared statements in transaction mode (PgBouncer 1.21 and
# later, max_prepared_statements; Debian 12 has none so new). It is the release Debian 13
# ships, compiled from Debian's own source archive and checked against the SHA-256 that
# archive's index gives. Exports API_PLUGIN_TEST_PGBOUNCER_PREPARED_URL and
# API_PLUGIN_TEST_PGBOUNCER_PREPARED_ADDRESS.
#
# The two timeouts are those docs/hosting.rst recommends: a query waiting for a server
# connection that cannot be made fails after query_wait_timeout (default 120 s, which
# would hold a worker through a whole outage), and after a failed login PgBouncer tries
# the server again after server_login_retry (default 15 s, refusing every client
# meanwhile).
PGB_PORT=${PGB_PORT:-16432}
PGB_DIR=${PGB_DIR:-/tmp/api_plugin_pgbouncer}
PGB_PREPARED_PORT=${PGB_PREPARED_PORT:-16433}
PGB_PREPARED_DIR=${PGB_PREPARED_DIR:-/tmp/api_plugin_pgbouncer_prepared}
PGB_SOURCE_SUITE=${PGB_SOURCE_SUITE:-trixie}
PGB_BUILD_DIR=${PGB_BUILD_DIR:-/opt/api_plugin_pgbouncer}
DEBIAN_ARCHIVE=${DEBIAN_ARCHIVE:-http://deb.debian.org/debian}

# _run_pgbouncer BINARY PORT DIR [EXTRA-SETTING]: write DIR/pgbouncer.ini, start, wait.
_run_pgbouncer() {
  local binary=$1 port=$2 dir=$3 extra=${4:-}
  rm -rf "$dir" && mkdir -p "$dir"
  echo '"postgres" ""' > "$dir/users.txt"
  cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
server_reset_query =
query_wait_timeout = 2
server_login_retry = 1
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
$extra
INI
  chown -R postgres:postgres "$dir"
  su postgres -c "$binary -d $dir/pgbouncer.ini"
  for _ in $(seq 50); do
    pg_isready -q -h 127.0.0.1 -p "$port" && return 0
    sleep 0.1
  done
  echo "PgBouncer ($binary) did not start on port $port:" >&2
  tail -n 20 "$dir/pgbouncer.log" >&2
  return 1
}

start_pgbouncer() {
  _run_pgbouncer pgbouncer "$PGB_PORT" "$PGB_DIR"
  export API_PLUGIN_TEST_PGBOUNCER_ADDRESS="postgres@127.0.0.1:$PGB_PORT/postgres"
  export API_PLUGIN_TEST_PGBOUNCER_URL="postgresql://$API_PLUGIN_TEST_PGBOUNCER_ADDRESS"
}

# Needs curl, a C compiler, make, pkg-config, libevent-dev and libssl-dev.
build_preparing_pgbouncer() {
  [ -x "$PGB_BUILD_DIR/bin/pgbouncer" ] && return 0
  local work stanza dir sum file
  work=$(mktemp -d)
  curl -fsS --retry 3 -o "$work/Sources.gz" \
    "$DEBIAN_ARCHIVE/dists/$PGB_SOURCE_SUITE/main/source/Sources.gz"
  # pgbouncer's stanza: its pool directory, and its .orig.tar.gz's SHA-256 and name
  stanza=$(zcat "$work/Sources.gz" | awk '
    /^Package: / { mine = ($2 == "pgbouncer") }
    mine && /^Directory: / { dir = $2 }
    mine && /^Checksums-Sha256:/ { sums = 1; next }
    sums && !/^ / { sums = 0 }
    mine && sums && $3 ~ /\.orig\.tar\.gz$/ { sum = $1; file = $3 }
    END { print dir, sum, file }')
  read -r dir sum file <<<"$stanza"
  [ -n "$file" ] || { echo "no pgbouncer source in $PGB_SOURCE_SUITE" >&2; return 1; }
  curl -fsS --retry 3 -o "$work/$file" "$DEBIAN_ARCHIVE/$dir/$file"
  echo "$sum  $work/$file" | sha256sum -c --quiet
  tar -xzf "$work/$file" -C "$work"
  if ! (cd "$work"/pgbouncer-*/ \
        && ./configure --prefix="$PGB_BUILD_DIR" --without-cares --without-systemd \
             --without-pam --without-ldap \
        && make -j"$(nproc)" && make install) >"$work/build.log" 2>&1; then
    tail -n 30 "$work/build.log" >&2
    return 1
  fi
  rm -rf "$work"
}

start_preparing_pgbouncer() {
  _run_pgbouncer "$PGB_BUILD_DIR/bin/pgbouncer" "$PGB_PREPARED_PORT" "$PGB_PREPARED_DIR" \
    "max_prepared_statements = 200"
  export API_PLUGIN_TEST_PGBOUNCER_PREPARED_ADDRESS="postgres@127.0.0.1:$PGB_PREPARED_PORT/postgres"
  export API_PLUGIN_TEST_PGBOUNCER_PREPARED_URL="postgresql://$API_PLUGIN_TEST_PGBOUNCER_PREPARED_ADDRESS"
}

stop_pgbouncer() {
  local dir
  for dir in "$PGB_DIR" "$PGB_PREPARED_DIR"; do
    [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  done
}
