#!/usr/bin/env bash
# Throughput of a built host serving static_response against a minimal plain hyper server
# (bench/plain-hyper) on the same runtime settings, both on loopback, in the same run.
# Goal: the host keeps at least 90% of the plain server's requests per second.
#
#   bench/http_throughput.sh            # defaults below; needs wrk (apt-get install -y wrk)
#   WORKERS=2 DURATION=20s bench/http_throughput.sh
#
# Rounds alternate plain, host, plain, host, ... so drift in machine load hits both alike;
# the medians are compared. With 2+ CPUs the servers are pinned to CPU 0 and wrk to CPU 1
# (set PIN=0 to disable), so the load generator does not steal the server's core.
set -euo pipefail

cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-1}          # tokio worker threads, for both servers
DURATION=${DURATION:-10s}      # per wrk run
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
ACCESS_LOG=${ACCESS_LOG:-false} # the baseline writes no log; `true` measures its cost
HOST_ADDR=127.0.0.1:18080
PLAIN_ADDR=127.0.0.1:18081

command -v wrk >/dev/null || { echo "error: wrk not found; install it with \`apt-get install -y wrk\`" >&2; exit 1; }

echo "building (release)..." >&2
cargo build --quiet --release -p xbuild-standard --example host
cargo build --quiet --release --manifest-path bench/plain-hyper/Cargo.toml --target-dir target
HOST_BIN=target/release/examples/host
PLAIN_BIN=target/release/plain-hyper

server_pin=() wrk_pin=()
if [[ $PIN == 1 ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  server_pin=(taskset -c 0) wrk_pin=(taskset -c 1)
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
sed -e "s/^worker_threads = .*/worker_threads = $WORKERS/" \
    -e "s/^access_log = .*/access_log = $ACCESS_LOG/" \
    bench/hello-bench.toml >"$work/host.toml"

wait_for() { # addr
  for _ in $(seq 100); do
    curl -fs "http://$1/" >/dev/null && return 0
    sleep 0.05
  done
  echo "error: nothing answers on $1" >&2
  exit 1
}

run_one() { # name addr command...
  local name=$1 addr=$2; shift 2
  "${server_pin[@]}" "$@" >"$work/$name.log" 2>&1 &
  server_pid=$!
  wait_for "$addr"
  # Warm-up: connections, allocator, caches.
  "${wrk_pin[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s "http://$addr/" >/dev/null
  local rps
  rps=$("${wrk_pin[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" "http://$addr/" |
        awk '/^Requests\/sec:/ { print $2 }')
  kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  echo "$rps"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "settings: workers=$WORKERS connections=$CONNECTIONS wrk_threads=$WRK_THREADS duration=$DURATION rounds=$ROUNDS pinned=$([[ ${#server_pin[@]} -gt 0 ]] && echo yes || echo no) access_log=$ACCESS_LOG"
: >"$work/plain.rps"; : >"$work/host.rps"
for round in $(seq "$ROUNDS"); do
  plain=$(WORKERS=$WORKERS run_one plain "$PLAIN_ADDR" "$PLAIN_BIN" "$PLAIN_ADDR")
  host=$(XBUILD_LOG=${XBUILD_LOG:-info} run_one host "$HOST_ADDR" "$HOST_BIN" run --config "$work/host.toml")
  echo "$plain" >>"$work/plain.rps"; echo "$host" >>"$work/host.rps"
  printf 'round %d: plain hyper %10.0f req/s   xbuild host %10.0f req/s\n' "$round" "$plain" "$host"
done
plain=$(median <"$work/plain.rps"); host=$(median <"$work/host.rps")
ratio=$(awk -v h="$host" -v p="$plain" 'BEGIN { printf "%.1f", 100 * h / p }')
printf 'median:  plain hyper %10.0f req/s   xbuild host %10.0f req/s   host/plain = %s%% (goal >= 90%%)\n' "$plain" "$host" "$ratio"
