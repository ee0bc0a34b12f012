# shellcheck shell=bash
# Sourced by .ci/run: a throw-away PostgreSQL server for the PostgreSQL state store
# tests (internal/state/postgres_test.go). It installs Debian's postgresql when it is
# missing, runs its own cluster as the postgres user in a directory of its own, on
# 127.0.0.1 only, on a port away from the default (RULESD_PG_PORT, default 55432),
# creates a role and a database for the tests, and exports
#   RULESD_TEST_POSTGRES_DSN   the DSN the tests use (each test makes its own schema)
#   RULESD_REQUIRE_POSTGRES=1  so that the tests fail rather than skip without it.
# It works on a fresh machine and when run again (it reuses a running cluster). It
# never touches the cluster Debian's package may create (main, port 5432).
# The server keeps running after CI (fsync=off: test data only). Stop it with
#   runuser -u postgres -- /usr/lib/postgresql/VERSION/bin/pg_ctl -D "$RULESD_PG_DIR/data" stop

rulesd_pg_setup() {
  local port="${RULESD_PG_PORT:-55432}"
  local dir="${RULESD_PG_DIR:-/tmp/rulesd-ci-postgres-$port}"
  local data="$dir/data" bin run=()

  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")"

  # The server refuses to run as root: as root, run it as the postgres user the
  # package created; otherwise as the current user.
  if [ "$(id -u)" = 0 ]; then
    run=(runuser -u postgres --)
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
  fi

  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"
    "${run[@]}" "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log"; return 1; }
  fi
  if ! "$bin/pg_isready" -q -h "$dir" -p "$port"; then
    # Not answering: stop whatever is left of an earlier server (a killed one leaves
    # its pid file behind, and its pid may linger as a zombie in a container), then
    # start afresh.
    "${run[@]}" "$bin/pg_ctl" -D "$data" -m immediate -t 10 stop >/dev/null 2>&1 || true
    rm -f "$data/postmaster.pid"
    "${run[@]}" "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" >/dev/null ||
      { tail -n 30 "$dir/server.log"; return 1; }
  fi

  local psql=("${run[@]}" "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres)
  "${psql[@]}" <<'SQL'
SELECT 'CREATE ROLE rulesd LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rulesd') \gexec
ALTER ROLE rulesd PASSWORD 'rulesd';
SELECT 'CREATE DATABASE rulesd OWNER rulesd' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'rulesd') \gexec
SQL

  export RULESD_PG_DIR="$dir"
  export RULESD_TEST_POSTGRES_DSN="postgres://rulesd:rulesd@127.0.0.1:$port/rulesd?sslmode=disable"
  export RULESD_REQUIRE_POSTGRES=1
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)"
}
rulesd_pg_setup
