#!/usr/bin/env bash
# Reads spread over a whole archive at two sizes, alternately: teasers of every
# subscribers article, 8 s at 64 connections, on a database of SMALL articles (default
# 1,000) and one of LARGE (default 1,000,000; seeding it takes about two minutes and
# 8.7 GB of disk), ROUNDS times over (default 3). Each run reads its database file once
# first, so that it is measured in the system's cache, as a serving database is, and
# prints how much the system caches before and after it. Prints each round's requests/s,
# p50 and p99 at both sizes and the ratio of the p50s, then the median ratio (the
# target: under 1.5).
#
#   bash bench/spread.sh
#   ROUNDS=5 LARGE=100000 bash bench/spread.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-1000}
LARGE=${LARGE:-1000000}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18172}
# shellcheck source=bench/common.sh
source bench/common.sh
for size in "$SMALL" "$LARGE"; do
  echo "seeding $size articles..."
  mkdir -p "$work/$size"
  ./target/release/examples/seed "sqlite://$work/$size/bench.db" "$secret" "$work/$size" "$size" 20 100 >/dev/null
done
sync
base="http://127.0.0.1:$PORT"
cached() { awk '/^Cached:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo; }
run() { # size -> "requests/s p50 p99" (milliseconds)
  cat "$work/$1/bench.db" >/dev/null
  PAYWALL_BIND=127.0.0.1:$PORT DATABASE_URL="sqlite://$work/$1/bench.db" PAYWALL_JWT_SECRET="$secret" \
    PAYWALL_LOG=warn ./target/release/paywall serve >>"$work/server.log" 2>&1 &
  server=$!
  await_server "$base"
  local before out
  before=$(cached)
  out=$(SLUGS=$work/$1/subscribers.txt wrk -t2 -c64 -d8s --latency -s bench/lua/paths.lua "$base")
  echo "$out" | awk -v size="$1" -v before="$before" -v after="$(cached)" '
    function ms(v) { n = v + 0; if (v ~ /us$/) return n / 1000; if (v ~ /ms$/) return n; return n * 1000 }
    /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    END { printf "%s %.0f %.3f %.2f %s %s\n", size, rps, p50, p99, before, after }'
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
}
echo
echo "| round | $SMALL: requests/s, p50, p99 | $LARGE: requests/s, p50, p99 | p50 ratio | cached during the $LARGE run |"
echo "|---|---|---|---|---|"
ratios=()
for round in $(seq 1 "$ROUNDS"); do
  read -r _ small_rps small_p50 small_p99 _ _ <<<"$(run "$SMALL")"
  read -r _ large_rps large_p50 large_p99 before after <<<"$(run "$LARGE")"
  ratio=$(awk -v a="$small_p50" -v b="$large_p50" 'BEGIN { printf "%.2f", b / a }')
  ratios+=("$ratio")
  echo "| $round | $small_rps, $small_p50 ms, $small_p99 ms | $large_rps, $large_p50 ms, $large_p99 ms | $ratio | $before to $after GiB |"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo
echo "median p50 ratio, $LARGE against $SMALL articles: $median (target: under 1.5)"
