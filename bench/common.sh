# Sourced by the benchmarks that run one server at a time (memory.sh, spread.sh), from
# the repository's root: wrk (installed from the system's packages if missing), the
# release build with the seed, a work directory removed on exit with the server still
# running in `server` stopped, and a fresh signing secret in `secret`.
command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet --bin paywall --example seed
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
secret="bench-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# Waits for the server at `base` to answer /healthz; shows its log and fails if it does
# not within 10 s.
await_server() { # base
  for _ in $(seq 1 100); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "the server did not start:"
  cat "$work/server.log"
  exit 1
}
