#!/usr/bin/env bash
# Load benchmark: builds in release mode, seeds a fresh database through the store
# (ARTICLES articles of every access level, ACCOUNTS accounts), starts the service, and
# runs each scenario with wrk for DURATION seconds at 64 connections. Prints requests/s,
# p50, p99, the ratio to /healthz in the same run, errors, and the server's peak
# resident memory; writes the table to bench/out/results.md.
#
# ROUNDS=N runs the whole list N times over and reports, per scenario, the median of its
# rounds (requests/s, ratio to the same round's /healthz, p50, p99) and every round's
# ratio: this machine's speed drifts between runs, and a ratio within one round is the
# fair one.
#
# BACKEND=postgres runs on a fresh PostgreSQL database made on the server PG_URL names
# (and dropped after); INSTANCES=2 starts two servers on that one database and splits
# the connections between them (their requests/s are added; p50 and p99 are the worse).
#
# Scenarios: healthz, teaser (anonymous, subscribers articles), page (the same reads as
# the site's HTML article pages, signed out), subscriber (full read, a plan of unlimited
# seats), seated (full read on a one-seat plan: every read checks the reading seat),
# reader (signed-in reader, teaser), list, metered (charged reads, new readers' ids),
# returning (charged reads, ids in random order), reread (64 readers re-reading the 3
# articles their meters counted), login, flood (teasers while sign-ins flood), hooks
# (teasers while an editor's account edits, 100 a second, are delivered as webhooks to
# a receiver that takes HOOK_DELAY seconds, 2 by default, to answer each).
#
# STATEMENTS=1 (PostgreSQL only, with pg_stat_statements loaded on the server: see
# bench/statements.sh, which starts such a server of its own) adds, for each scenario,
# the database statements per 1,000 requests and per second, from pg_stat_statements
# reset before the scenario and read after it; BEGIN, COMMIT and the instances'
# background reads (the cache poller and the session fence) included.
#
# BUILDS="label=path label=path" runs each of those binaries in turn in every round, on
# the one seeded database (each started afresh for its turn), and reports each
# scenario per build: a before/after pair measured alternately, on the same data, in
# the same minutes. Without it, the binary just built runs alone.
#
#   bash bench/run.sh                       # every scenario
#   ARTICLES=100000 DURATION=20 bash bench/run.sh teaser subscriber
#   ROUNDS=3 bash bench/run.sh healthz metered
#   BACKEND=postgres INSTANCES=2 bash bench/run.sh healthz teaser subscriber
set -euo pipefail
cd "$(dirname "$0")/.."
ARTICLES=${ARTICLES:-10000}
ACCOUNTS=${ACCOUNTS:-200}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18181}
BACKEND=${BACKEND:-sqlite}
INSTANCES=${INSTANCES:-1}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# Article reads rotate over every subscribers article, or over the HOT newest (readers
# crowd onto the latest stories).
HOT=${HOT:-0}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(healthz teaser page subscriber seated reader list metered returning reread login flood)

command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet --bin paywall --example seed --example hash_time
# The login target is made of one hash's time on this machine (80% of the cores ÷ it),
# measured before the server starts.
hashing=""
if [[ " ${scenarios[*]} " == *" login "* ]]; then hashing=$(./target/release/examples/hash_time 20); fi

work=$(mktemp -d)
servers=()
pg_database=""
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$pg_database" ] && psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
secret="bench-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
case $BACKEND in
  sqlite) db="sqlite://$work/bench.db" ;;
  postgres)
    pg_database="paywall_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    psql -q "$PG_URL" -c "CREATE DATABASE $pg_database" >/dev/null
    db=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$pg_database")
    if [ -n "${STATEMENTS:-}" ]; then psql -q "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null; fi
    ;;
  *) echo "BACKEND must be sqlite or postgres" >&2; exit 2 ;;
esac
if [ -n "${STATEMENTS:-}" ] && [ "$BACKEND" != postgres ]; then
  echo "STATEMENTS=1 counts PostgreSQL statements: set BACKEND=postgres (or run bench/statements.sh)" >&2
  exit 2
fi
echo "seeding $ARTICLES articles and $ACCOUNTS accounts ($BACKEND)..."
# Meter ids for the charged scenarios: each is good for three charged reads, and every
# round of each scenario takes its own, for up to 120,000 charged reads a second.
# `metered` takes its ids in the order they were issued, as readers new to the site
# arrive; `returning` takes others in random order, as readers whose ids were issued
# days or weeks apart (an id's text begins with its issue time: see README).
ids_per_round=$((DURATION * 40000))
turns=$((ROUNDS * $(wc -w <<<"${BUILDS:-now}")))
./target/release/examples/seed "$db" "$secret" "$work" "$ARTICLES" "$ACCOUNTS" $((2 * turns * ids_per_round)) >/dev/null
split -d -a 3 -l "$ids_per_round" "$work/meter_ids.txt" "$work/meter_ids-"
for i in $(seq 1 2 $((2 * turns - 1))); do
  file=$(printf '%s/meter_ids-%03d' "$work" "$i")
  shuf "$file" -o "$file"
done
# The returning readers of `reread`: ids no other scenario reaches.
tail -n 64 "$work/meter_ids.txt" >"$work/reread_ids.txt"
# The seed leaves its writes in the system's cache, to be written out later: at
# 1,000,000 articles, gigabytes that the kernel would write during the first runs.
sync
# And what the seed wrote first may have left the system's cache by now (the bench
# machines page out memory idle for a minute): the runs measure reads of a database
# the system caches, as a serving one is, not reads from the disk.
if [ "$BACKEND" = sqlite ]; then cat "$work/bench.db" >/dev/null; fi

builds=()
for build in ${BUILDS:-now=./target/release/paywall}; do builds+=("$build"); done
bases=()
start_servers() { # binary
  servers=() bases=()
  for i in $(seq 0 $((INSTANCES - 1))); do
    port=$((PORT + i))
    PAYWALL_WEBHOOK_ALLOW_PRIVATE=true PAYWALL_SITE=on PAYWALL_BIND=127.0.0.1:$port PAYWALL_WORKERS=${WORKERS:-$(nproc)} DATABASE_URL=$db PAYWALL_JWT_SECRET=$secret PAYWALL_LOG=warn \
      PAYWALL_LOGIN_MAX_FAILURES=10000 PAYWALL_LOGIN_MAX_FAILURES_PER_ADDRESS=1000000 \
      "$1" serve >>"$work/server-$i.log" 2>&1 &
    servers+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "the server did not start:"; cat "$work/server-$i.log"; exit 1; }
    bases+=("http://127.0.0.1:$port")
  done
}
# Peak resident memory per server, kept for the report before a server stops.
declare -A memory_of
stop_servers() { # build label
  for i in "${!servers[@]}"; do
    local hwm
    hwm=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/${servers[$i]}/status" 2>/dev/null || echo 0)
    memory_of["$1 $i"]=$(awk -v a="${memory_of["$1 $i"]:-0}" -v b="$hwm" 'BEGIN { print (b > a ? b : a) }')
    kill "${servers[$i]}" 2>/dev/null || true
    wait "${servers[$i]}" 2>/dev/null || true
  done
  servers=()
}
start_servers "${builds[0]#*=}"
current=${builds[0]%%=*}

login() {
  curl -sf "http://127.0.0.1:$PORT/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"bench-passphrase-Ravel-1875\"}" \
    | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}
subscriber_token=$(login subscriber0@bench.example)
reader_token=$(login reader1@bench.example)
seated_token=$(login subscriber2@bench.example)

if [ "$HOT" -gt 0 ]; then
  tail -n "$HOT" "$work/subscribers.txt" >"$work/reads.txt"
else
  cp "$work/subscribers.txt" "$work/reads.txt"
fi

base="http://127.0.0.1:$PORT"
run_wrk() { # name, then wrk arguments where @BASE@ stands for each instance's address
  local name=$1; shift
  local i=0 pids=() threads=$((INSTANCES > 1 ? 1 : 2))
  for b in "${bases[@]}"; do
    WRK_PROCESS=$i WRK_PROCESSES=$INSTANCES WRK_THREADS=$threads \
      wrk -t"$threads" -c"$((CONNECTIONS / INSTANCES))" -d"${DURATION}s" --latency "${@//@BASE@/$b}" >"$work/out-$name-$i.txt" 2>&1 &
    pids+=($!)
    i=$((i + 1))
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
}
scenario() {
  case $1 in
    healthz) run_wrk healthz "@BASE@/healthz" ;;
    teaser) SLUGS=$work/reads.txt run_wrk teaser -s bench/lua/paths.lua "@BASE@" ;;
    page) SLUGS=$work/reads.txt PREFIX=/articles/ run_wrk page -s bench/lua/paths.lua "@BASE@" ;;
    subscriber) SLUGS=$work/reads.txt TOKEN=$subscriber_token run_wrk subscriber -s bench/lua/paths.lua "@BASE@" ;;
    seated) SLUGS=$work/reads.txt TOKEN=$seated_token run_wrk seated -s bench/lua/paths.lua "@BASE@" ;;
    reader) SLUGS=$work/reads.txt TOKEN=$reader_token run_wrk reader -s bench/lua/paths.lua "@BASE@" ;;
    list) run_wrk list "@BASE@/v1/articles?limit=20" ;;
    metered) SLUGS=$work/metered.txt METER_IDS=$(printf '%s/meter_ids-%03d' "$work" $((2 * turn))) run_wrk metered -s bench/lua/metered.lua "@BASE@" ;;
    returning) SLUGS=$work/metered.txt METER_IDS=$(printf '%s/meter_ids-%03d' "$work" $((2 * turn + 1))) run_wrk returning -s bench/lua/metered.lua "@BASE@" ;;
    reread) SLUGS=$work/metered.txt METER_IDS=$work/reread_ids.txt READERS=64 run_wrk reread -s bench/lua/metered.lua "@BASE@" ;;
    login) ACCOUNTS=$work/accounts.txt run_wrk login -s bench/lua/login.lua "@BASE@" ;;
    flood)
      ACCOUNTS=$work/accounts.txt wrk -t1 -c16 -d"$((DURATION + 2))s" -s bench/lua/login.lua "$base" >"$work/out-flood-logins.txt" 2>&1 &
      local flood=$!
      sleep 1
      SLUGS=$work/reads.txt run_wrk flood -s bench/lua/paths.lua "@BASE@"
      wait "$flood" || true
      ;;
    hooks)
      local receiver_port=$((PORT + 50))
      COUNT_FILE=$work/hooks-received.txt python3 bench/slow_receiver.py "$receiver_port" "${HOOK_DELAY:-2}" &
      local receiver=$!
      local admin endpoint
      admin=$(login admin@bench.example)
      endpoint=$(curl -sf "$base/v1/admin/webhooks" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
        -d "{\"url\":\"http://127.0.0.1:$receiver_port/hooks\",\"events\":[\"account.updated\"]}" \
        | sed -E 's/.*"id":"([^"]+)".*/\1/')
      local before
      before=$(curl -sf "$base/metrics" | awk '/^paywall_webhook_deliveries_total/ { n += $2 } END { print n + 0 }')
      IDS=$work/account_ids.txt TOKEN=$admin PACE=20 wrk -t1 -c2 -d"$((DURATION + 2))s" -s bench/lua/edits.lua "$base" >"$work/out-hooks-edits.txt" 2>&1 &
      local edits=$!
      sleep 1
      SLUGS=$work/reads.txt run_wrk hooks -s bench/lua/paths.lua "@BASE@"
      wait "$edits" || true
      hooks_delivered=$(( $(curl -sf "$base/metrics" | awk '/^paywall_webhook_deliveries_total/ { n += $2 } END { print n + 0 }') - before ))
      hooks_pending=$(curl -sf "$base/metrics" | awk '/^paywall_webhook_pending/ { print $2 }')
      curl -sf -X DELETE "$base/v1/admin/webhooks/$endpoint" -H "Authorization: Bearer $admin" >/dev/null || true
      kill "$receiver" 2>/dev/null || true
      wait "$receiver" 2>/dev/null || true
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

median() { # numbers as arguments -> their median (the lower middle one for an even count)
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

mkdir -p bench/out
results=bench/out/results.md
declare -A rps_of p50_of p99_of ratio_of errors_of label_of rounds_of statements_of per_second_of
# The statements pg_stat_statements counted in the bench database since its last reset
# (its own queries and psql's left out).
statements() {
  psql -tA "$db" -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
    WHERE d.datname = current_database() AND s.query NOT ILIKE '%pg_stat_statements%'"
}
started=$(date -u +%Y-%m-%dT%H:%MZ)
metered_reads=0
turn=0
for round in $(seq 1 "$ROUNDS"); do
 for build in "${builds[@]}"; do
  label=${build%%=*}
  if [ ${#builds[@]} -gt 1 ]; then
    [ ${#servers[@]} -gt 0 ] && stop_servers "$current"
    start_servers "${build#*=}"
  fi
  current=$label
  healthz_rps=""
  for scenario_name in "${scenarios[@]}"; do
    name=$scenario_name
    if [ -n "${STATEMENTS:-}" ]; then psql -tA "$db" -c "SELECT pg_stat_statements_reset()" >/dev/null; fi
    scenario "$name"
    rps=0 requests=0 p50=0 p99=0 non2xx=0 socket=0
    for out in "$work"/out-"$name"-[0-9]*.txt; do
      rps=$(awk -v a="$rps" -v b="$(field "$out" '/Requests\/sec/ {print $2}')" 'BEGIN { printf "%.2f", a + b }')
      p50=$(awk -v a="$p50" -v b="$(to_ms "$(field "$out" '$1 == "50%" {print $2}')")" 'BEGIN { print (b > a ? b : a) }')
      p99=$(awk -v a="$p99" -v b="$(to_ms "$(field "$out" '$1 == "99%" {print $2}')")" 'BEGIN { print (b > a ? b : a) }')
      requests=$((requests + $(field "$out" '/requests in/ {print $1}')))
      n=$(field "$out" '/Non-2xx/ {print $NF}'); non2xx=$((non2xx + ${n:-0}))
      n=$(field "$out" '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}'); socket=$((socket + ${n:-0}))
      if [ "$name" = metered ] || [ "$name" = returning ] || [ "$name" = reread ]; then
        metered_reads=$((metered_reads + $(field "$out" '/requests in/ {print $1}')))
      fi
    done
    key=$name
    [ ${#builds[@]} -gt 1 ] && key="$label: $name"
    if [ -n "${STATEMENTS:-}" ]; then
      counted=$(statements)
      statements_of[$key]+="$(awk -v s="$counted" -v r="$requests" 'BEGIN { printf "%.0f", (r > 0 ? 1000 * s / r : 0) }') "
      per_second_of[$key]+="$(awk -v s="$counted" -v d="$DURATION" 'BEGIN { printf "%.0f", s / d }') "
    fi
    [ "$name" = healthz ] && healthz_rps=$rps
    ratio="-"
    # Sign-ins are bounded by hashing, not by the HTTP path: no ratio.
    [ -n "$healthz_rps" ] && [ "$name" != login ] && ratio=$(awk -v a="$rps" -v b="$healthz_rps" 'BEGIN { printf "%.2f", a / b }')
    rps_of[$key]+="$rps " p50_of[$key]+="$p50 " p99_of[$key]+="$p99 " ratio_of[$key]+="$ratio "
    rounds_of[$key]+="$ratio (p99 $p99) "
    errors_of[$key]=$(( ${errors_of[$key]:-0} + non2xx + socket ))
    label_of[$key]=$key
    if [ "$name" = flood ]; then
      logins=$work/out-flood-logins.txt
      late=$(field "$logins" '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}')
      label_of[$key]="${key%flood}teaser during login flood ($(field "$logins" '/Requests\/sec/ {print $2}') logins/s, ${late:-0} sign-ins over wrk's 2 s timeout"
      if [ "$ROUNDS" -gt 1 ]; then label_of[$key]+=", in the last round"; fi
      label_of[$key]+=")"
    fi
    if [ "$name" = hooks ]; then
      label_of[$key]="${key%hooks}teaser during webhook deliveries ($(field "$work/out-hooks-edits.txt" '/Requests\/sec/ {print $2}') edits/s, $hooks_delivered attempts to a receiver taking ${HOOK_DELAY:-2} s, $(cat "$work/hooks-received.txt" 2>/dev/null || echo 0) received, ${hooks_pending:-?} pending after"
      if [ "$ROUNDS" -gt 1 ]; then label_of[$key]+=", in the last round"; fi
      label_of[$key]+=")"
    fi
  done
  turn=$((turn + 1))
 done
done
[ ${#servers[@]} -gt 0 ] && stop_servers "$current"

{
  echo "# $started, $(nproc) cores, $BACKEND, $INSTANCES instance(s), ARTICLES=$ARTICLES, reads over $(wc -l <"$work/reads.txt") articles, DURATION=${DURATION}s, ${CONNECTIONS} connections, ROUNDS=$ROUNDS"
  echo
  header="| scenario | requests/s | ratio to /healthz | p50 ms | p99 ms | errors |"
  rule="|---|---|---|---|---|---|"
  if [ -n "${STATEMENTS:-}" ]; then
    header+=" statements per 1,000 requests | statements/s |"
    rule+="---|---|"
  fi
  if [ "$ROUNDS" -gt 1 ]; then
    echo "Medians of $ROUNDS rounds; each round's ratio to its own /healthz, and its p99 in ms, in the last column."
    echo
    header+=" each round |"
    rule+="---|"
  fi
  echo "$header"
  echo "$rule"
  for name in "${scenarios[@]}"; do
   for build in "${builds[@]}"; do
    key=$name
    [ ${#builds[@]} -gt 1 ] && key="${build%%=*}: $name"
    ratio="-"
    [[ "${ratio_of[$key]}" == *-* ]] || ratio=$(median ${ratio_of[$key]})
    row="| ${label_of[$key]} | $(median ${rps_of[$key]}) | $ratio | $(median ${p50_of[$key]}) | $(median ${p99_of[$key]}) | ${errors_of[$key]} |"
    if [ -n "${STATEMENTS:-}" ]; then row+=" $(median ${statements_of[$key]}) | $(median ${per_second_of[$key]}) |"; fi
    if [ "$ROUNDS" -gt 1 ]; then row+=" ${rounds_of[$key]}|"; fi
    echo "$row"
   done
  done
} >"$results"
if [[ " ${scenarios[*]} " == *" metered "* || " ${scenarios[*]} " == *" returning "* || " ${scenarios[*]} " == *" reread "* ]]; then
  count="select count(*) from meter_reads where meter_key like 'm:%'"
  if [ "$BACKEND" = sqlite ]; then
    charged=$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" "$work/bench.db" "$count")
  else
    charged=$(psql -tA "$db" -c "$count")
  fi
  echo >>"$results"
  # wrk counts the answers it read; reads still in flight when it stopped may be charged too.
  echo "Charges recorded in the database after the metered runs: $charged, for $metered_reads metered reads answered" >>"$results"
fi
if [ -n "$hashing" ]; then
  echo >>"$results"
  echo "Argon2id at the service's cost, before the run: $hashing" >>"$results"
fi
echo >>"$results"
for build in "${builds[@]}"; do
  for i in $(seq 0 $((INSTANCES - 1))); do
    who="server $i"
    [ ${#builds[@]} -gt 1 ] && who="${build%%=*}, server $i"
    echo "Peak resident memory of $who: ${memory_of["${build%%=*} $i"]} MiB" >>"$results"
  done
done
cat "$results"
