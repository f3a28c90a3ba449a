#!/usr/bin/env bash
# Load benchmark: builds in release mode, seeds a fresh SQLite database through the store
# (ARTICLES articles of every access level, ACCOUNTS accounts), starts the service, and
# runs each scenario with wrk for DURATION seconds at 64 connections. Prints requests/s,
# p50, p99, the ratio to /healthz in the same run, errors, and the server's peak
# resident memory; writes the table to bench/out/results.md.
#
#   bash bench/run.sh                       # every scenario
#   ARTICLES=100000 DURATION=20 bash bench/run.sh teaser subscriber
set -euo pipefail
cd "$(dirname "$0")/.."
ARTICLES=${ARTICLES:-10000}
ACCOUNTS=${ACCOUNTS:-200}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18181}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(healthz teaser subscriber reader list metered login flood)

command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet --bin paywall --example seed

work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
secret="bench-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
db="sqlite://$work/bench.db"
echo "seeding $ARTICLES articles and $ACCOUNTS accounts..."
./target/release/examples/seed "$db" "$secret" "$work" "$ARTICLES" "$ACCOUNTS" >/dev/null

PAYWALL_BIND=127.0.0.1:$PORT PAYWALL_WORKERS=${WORKERS:-$(nproc)} DATABASE_URL=$db PAYWALL_JWT_SECRET=$secret PAYWALL_LOG=warn \
  PAYWALL_LOGIN_MAX_FAILURES=10000 PAYWALL_LOGIN_MAX_FAILURES_PER_ADDRESS=1000000 \
  ./target/release/paywall serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "the server did not start:"; cat "$work/server.log"; exit 1; }

login() {
  curl -sf "http://127.0.0.1:$PORT/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"bench-passphrase-Ravel-1875\"}" \
    | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}
subscriber_token=$(login subscriber0@bench.example)
reader_token=$(login reader1@bench.example)

base="http://127.0.0.1:$PORT"
run_wrk() { # name, then wrk arguments
  local name=$1; shift
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" >"$work/out-$name.txt" 2>&1 || true
}
scenario() {
  case $1 in
    healthz) run_wrk healthz "$base/healthz" ;;
    teaser) SLUGS=$work/subscribers.txt run_wrk teaser -s bench/lua/paths.lua "$base" ;;
    subscriber) SLUGS=$work/subscribers.txt TOKEN=$subscriber_token run_wrk subscriber -s bench/lua/paths.lua "$base" ;;
    reader) SLUGS=$work/subscribers.txt TOKEN=$reader_token run_wrk reader -s bench/lua/paths.lua "$base" ;;
    list) run_wrk list "$base/v1/articles?limit=20" ;;
    metered) SLUGS=$work/metered.txt METER_IDS=$work/meter_ids.txt run_wrk metered -s bench/lua/metered.lua "$base" ;;
    login) ACCOUNTS=$work/accounts.txt run_wrk login -s bench/lua/login.lua "$base" ;;
    flood)
      ACCOUNTS=$work/accounts.txt wrk -t1 -c16 -d"$((DURATION + 2))s" -s bench/lua/login.lua "$base" >"$work/out-flood-logins.txt" 2>&1 &
      local flood=$!
      sleep 1
      SLUGS=$work/subscribers.txt run_wrk flood -s bench/lua/paths.lua "$base"
      wait "$flood" || true
      ;;
  esac
}

field() { # file, awk pattern -> value
  awk "$2" "$1" | head -n 1
}
to_ms() { # wrk latency such as 1.23ms, 850.00us, 1.02s -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
    printf "%.2f", n }'
}

mkdir -p bench/out
results=bench/out/results.md
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ARTICLES=$ARTICLES, DURATION=${DURATION}s, ${CONNECTIONS} connections"
  echo
  echo "| scenario | requests/s | ratio to /healthz | p50 ms | p99 ms | errors |"
  echo "|---|---|---|---|---|---|"
} >"$results"
healthz_rps=""
for name in "${scenarios[@]}"; do
  scenario "$name"
  out="$work/out-$name.txt"
  rps=$(field "$out" '/Requests\/sec/ {print $2}')
  p50=$(to_ms "$(field "$out" '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(field "$out" '$1 == "99%" {print $2}')")
  non2xx=$(field "$out" '/Non-2xx/ {print $NF}'); non2xx=${non2xx:-0}
  socket=$(field "$out" '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}'); socket=${socket:-0}
  [ "$name" = healthz ] && healthz_rps=$rps
  ratio="-"
  [ -n "$healthz_rps" ] && ratio=$(awk -v a="$rps" -v b="$healthz_rps" 'BEGIN { printf "%.2f", a / b }')
  label=$name
  [ "$name" = flood ] && label="teaser during login flood ($(field "$work/out-flood-logins.txt" '/Requests\/sec/ {print $2}') logins/s)"
  echo "| $label | $rps | $ratio | $p50 | $p99 | $((non2xx + socket)) |" >>"$results"
done
if [[ " ${scenarios[*]} " == *" metered "* ]]; then
  charged=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from meter_reads where meter_key like 'm:%'\").fetchone()[0])" "$work/bench.db")
  echo >>"$results"
  echo "Charges recorded in the database after the metered run: $charged" >>"$results"
fi
echo >>"$results"
echo "Peak resident memory of the server: $(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' /proc/$server/status)" >>"$results"
cat "$results"
