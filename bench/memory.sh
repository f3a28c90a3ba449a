#!/usr/bin/env bash
# Resident memory by phase: one server on a seeded database of ARTICLES articles (default
# 100,000), and after each 5 s wrk run at 64 connections its VmRSS, with RssAnon and
# RssFile, and its peak (VmHWM), from /proc/PID/status. The phases: teasers of the HOT
# newest subscribers articles (2,500), their HTML pages, teasers of every subscribers
# article, their pages, then a sign-in flood (16 connections signing in for 7 s while 64
# read hot teasers; the highest VmRSS of samples every 0.5 s), and the same 12 s later,
# once hashing has given its memory back. BUILDS="label=path ..." runs each binary in
# turn on the one database, ROUNDS times over (default 1), so that builds are compared
# alternately; extra settings for the servers go in SERVER_ENV ("NAME=value ...").
#
#   bash bench/memory.sh
#   ROUNDS=3 BUILDS="before=/tmp/paywall-old after=target/release/paywall" bash bench/memory.sh
#   SERVER_ENV="PAYWALL_HASH_THREADS=1 PAYWALL_CACHE_MIB=20" bash bench/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ARTICLES=${ARTICLES:-100000}
HOT=${HOT:-2500}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-18171}
# shellcheck source=bench/common.sh
source bench/common.sh
echo "seeding $ARTICLES articles..."
./target/release/examples/seed "sqlite://$work/bench.db" "$secret" "$work" "$ARTICLES" 200 1000 >/dev/null
tail -n "$HOT" "$work/subscribers.txt" >"$work/hot.txt"
base="http://127.0.0.1:$PORT"

status() { # label
  awk -v p="$1" '/^(VmRSS|RssAnon|RssFile|VmHWM):/ { v[$1] = $2 / 1024 }
    END { printf "| %s | %.1f (%.1f, %.1f) | %.1f |\n", p, v["VmRSS:"], v["RssAnon:"], v["RssFile:"], v["VmHWM:"] }' "/proc/$server/status"
}
reads() { # slugs file, path prefix
  SLUGS=$1 PREFIX=$2 wrk -t2 -c64 -d5s -s bench/lua/paths.lua "$base" >/dev/null
}

for round in $(seq 1 "$ROUNDS"); do
  for build in ${BUILDS:-now=./target/release/paywall}; do
    label=${build%%=*}
    # shellcheck disable=SC2086
    env ${SERVER_ENV:-} PAYWALL_SITE=on PAYWALL_BIND=127.0.0.1:$PORT DATABASE_URL="sqlite://$work/bench.db" \
      PAYWALL_JWT_SECRET="$secret" PAYWALL_LOG=warn PAYWALL_LOGIN_MAX_FAILURES=10000 \
      PAYWALL_LOGIN_MAX_FAILURES_PER_ADDRESS=1000000 "${build#*=}" serve >>"$work/server.log" 2>&1 &
    server=$!
    await_server "$base"
    echo
    echo "$label, round $round ($ARTICLES articles${SERVER_ENV:+, $SERVER_ENV})"
    echo
    echo "| after | VmRSS (RssAnon, RssFile) MiB | peak MiB |"
    echo "|---|---|---|"
    # The start-up code is let go five seconds after the listener opens.
    sleep 6
    status start
    reads "$work/hot.txt" /v1/articles/ && status "teasers, hot"
    reads "$work/hot.txt" /articles/ && status "pages, hot"
    reads "$work/subscribers.txt" /v1/articles/ && status "teasers, all"
    reads "$work/subscribers.txt" /articles/ && status "pages, all"
    ACCOUNTS=$work/accounts.txt wrk -t1 -c16 -d7s -s bench/lua/login.lua "$base" >"$work/logins.txt" 2>&1 &
    logins=$!
    sleep 1
    (for _ in $(seq 1 12); do sleep 0.5; awk '/^VmRSS:/ { print $2 / 1024 }' "/proc/$server/status"; done) >"$work/samples.txt" &
    sampler=$!
    reads "$work/hot.txt" /v1/articles/
    wait "$logins" || true
    wait "$sampler" || true
    status "sign-in flood"
    echo "| flood, highest sample | $(sort -g "$work/samples.txt" | tail -n 1 | xargs printf "%.1f") | |"
    echo "| sign-ins a second in the flood | $(awk '/Requests\/sec/ { print $2 }' "$work/logins.txt") | |"
    sleep 12
    status "12 s after the flood"
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
  done
done
