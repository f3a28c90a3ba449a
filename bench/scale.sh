#!/usr/bin/env bash
# Scaling run: the anonymous teaser scenario of bench/run.sh on databases of SIZES
# articles (seeded through the store), with reads over the HOT newest subscribers
# articles and over all of them. Prints one line per size and read set with
# requests/s, p50, p99 and the server's peak resident memory, and writes them to
# bench/out/scale.md.
#
#   bash bench/scale.sh                        # 1,000, 100,000 and 1,000,000 articles
#   SIZES="1000 100000" DURATION=5 bash bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000 100000 1000000}
HOT_SET=${HOT_SET:-2500}
DURATION=${DURATION:-10}
mkdir -p bench/out
out=bench/out/scale.md
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, DURATION=${DURATION}s"
  echo
  echo "| articles | reads over | teaser requests/s | ratio to /healthz | p50 ms | p99 ms | errors | peak memory |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$out"
for size in $SIZES; do
  for hot in "$HOT_SET" 0; do
    ARTICLES=$size HOT=$hot DURATION=$DURATION ACCOUNTS=20 bash bench/run.sh healthz teaser >/dev/null
    results=bench/out/results.md
    reads=$(sed -n 's/.*reads over \([0-9]*\) articles.*/\1/p' "$results")
    row=$(grep '^| teaser ' "$results" | cut -d'|' -f3-7)
    memory=$(sed -n 's/^Peak resident memory of server 0: //p' "$results")
    echo "| $size | $reads |$row| $memory |" | tee -a "$out"
  done
done
cat "$out"
