#!/usr/bin/env bash
# Database statements per 1,000 reads of each kind, on PostgreSQL: starts a PostgreSQL
# server of its own (a throw-away cluster in a temporary folder, on PG_PORT, with
# pg_stat_statements loaded, which the machine's own server may not have), runs
# bench/run.sh on it with STATEMENTS=1, and stops and removes it after.
#
#   bash bench/statements.sh                            # the read scenarios
#   INSTANCES=2 bash bench/statements.sh healthz subscriber reread
#
# The results table (bench/out/results.md) gains two columns: statements per 1,000
# requests, and per second (the instances' background reads included: the cache poller
# and the session fence's version reads).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_PORT=${PG_PORT:-55439}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL's server programs (initdb, pg_ctl) are not installed" >&2; exit 2; }
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(healthz teaser subscriber reader list metered returning reread)

cluster=$(mktemp -d)
# PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$cluster"
stop() {
  as_owner "$bin/pg_ctl" -D "$cluster/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$cluster"
}
trap stop EXIT
echo "starting a PostgreSQL server with pg_stat_statements on port $PG_PORT..."
as_owner "$bin/initdb" -D "$cluster/data" -U postgres -A trust >/dev/null
as_owner "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w \
  -o "-p $PG_PORT -k $cluster -c listen_addresses=127.0.0.1 -c max_connections=200 \
      -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" \
  start >/dev/null
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" BACKEND=postgres STATEMENTS=1 \
  bash bench/run.sh "${scenarios[@]}"
