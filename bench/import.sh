#!/usr/bin/env bash
# Times `paywall import-accounts` on N generated accounts (default 100,000) into a fresh
# SQLite database, twice: the first run creates every account, the second updates them.
# Usage: bench/import.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work/accounts.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,display_name,role,subscription_plan,subscription_expires_at,password_hash\n")
    for i in range(n):
        plan = "digital" if i % 3 == 0 else ""
        expires = "2027-06-01T00:00:00Z" if i % 6 == 0 else ""
        f.write(f"reader{i}@import.example,Reader {i},reader,{plan},{expires},\n")
PY
export DATABASE_URL="sqlite://$work/import.db"
for run in create update; do
  start=$EPOCHREALTIME
  ./target/release/paywall import-accounts "$work/accounts.csv" > "$work/report.txt"
  end=$EPOCHREALTIME
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  echo "$run $n accounts: $seconds s ($(tail -n 1 "$work/report.txt"))"
done
