#!/usr/bin/env bash
# Throughput of a built host serving static_response against a minimal plain hyper server
# (bench/plain-hyper) on the same runtime settings, both on loopback, in the same run.
# Goal: the host keeps at least 90% of the plain server's requests per second.
#
#   bench/http_throughput.sh            # defaults below; needs wrk (apt-get install -y wrk)
#   WORKERS=2 DURATION=20s bench/http_throughput.sh
#   TLS=1 bench/http_throughput.sh      # both over HTTPS: the host with xbuild-tls against
#                                       # plain hyper + rustls (same provider, same versions)
#
# Each round measures the plain server, the host with its access log off and the host with
# it on (the default), back to back in a rotating order, so drift in machine load hits all
# three alike; the summary is the median of the per-round ratios. Besides
# requests/s it reports the server's CPU time per request (from /proc), which is what
# decides throughput once the server is the bottleneck and is less disturbed by other load.
# With 2+ CPUs the servers are pinned to CPU 0 and wrk to CPU 1 (PIN=0 disables), so the
# load generator does not take the server's core.
set -euo pipefail

cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-1}          # tokio worker threads, for both servers
DURATION=${DURATION:-5s}       # per wrk run
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
ROUNDS=${ROUNDS:-5}
PIN=${PIN:-1}
source bench/http_servers.sh
require wrk
setup_servers "$WORKERS"

server_pin=() wrk_pin=()
if [[ $PIN == 1 ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  server_pin=(taskset -c 0) wrk_pin=(taskset -c 1)
fi

wait_for() { # addr
  for _ in $(seq 100); do
    curl -kfs "$SCHEME://$1/" >/dev/null && return 0
    sleep 0.05
  done
  echo "error: nothing answers on $1" >&2
  exit 1
}

cpu_ticks() { # pid: user+system CPU time in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

run_one() { # name addr command... -> "requests/s CPU-microseconds-per-request"
  local name=$1 addr=$2; shift 2
  "${server_pin[@]}" "$@" >"$work/$name.log" 2>&1 &
  server_pid=$!
  wait_for "$addr"
  # Warm-up: connections, allocator, caches.
  "${wrk_pin[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d1s "$SCHEME://$addr/" >/dev/null
  local before after out
  before=$(cpu_ticks "$server_pid")
  out=$("${wrk_pin[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" "$SCHEME://$addr/")
  after=$(cpu_ticks "$server_pid")
  kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    /^ *[0-9]+ requests in/ { requests = $1 }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "%s %.2f\n", rps, ticks / hz * 1e6 / requests }' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "settings: scheme=$SCHEME workers=$WORKERS connections=$CONNECTIONS wrk_threads=$WRK_THREADS duration=$DURATION rounds=$ROUNDS pinned=$([[ ${#server_pin[@]} -gt 0 ]] && echo yes || echo no)"
: >"$work/results"
run_plain() { WORKERS=$WORKERS run_one plain "$PLAIN_ADDR" "$PLAIN_BIN" "${PLAIN_ARGS[@]}"; }
# The log lines go to a file, as a service's would.
run_host() { XBUILD_LOG=${XBUILD_LOG:-info} run_one "host-log-$1" "$HOST_ADDR" "$HOST_BIN" run --config "$work/host-log-$1.toml"; }
for round in $(seq "$ROUNDS"); do
  case $(( round % 3 )) in
    1) plain=$(run_plain); off=$(run_host false); on=$(run_host true) ;;
    2) off=$(run_host false); on=$(run_host true); plain=$(run_plain) ;;
    0) on=$(run_host true); plain=$(run_plain); off=$(run_host false) ;;
  esac
  read -r plain_rps plain_cpu <<<"$plain"; read -r off_rps off_cpu <<<"$off"; read -r on_rps on_cpu <<<"$on"
  echo "$plain_rps $off_rps $on_rps $plain_cpu $off_cpu $on_cpu" >>"$work/results"
  awk -v p="$plain_rps" -v f="$off_rps" -v n="$on_rps" -v pc="$plain_cpu" -v fc="$off_cpu" -v nc="$on_cpu" -v r="$round" 'BEGIN {
    printf "round %d: plain %7.0f req/s %5.2f us CPU/req | log off %7.0f req/s %5.2f us | log on %7.0f req/s %5.2f us | off/plain %5.1f%%, on/plain %5.1f%%\n",
      r, p, pc, f, fc, n, nc, 100 * f / p, 100 * n / p }'
done
col() { awk -v c="$1" '{ print $c }' "$work/results" | median; }
ratio() { awk -v a="$1" -v b="$2" '{ print 100 * $a / $b }' "$work/results" | median; }
printf 'median: plain %.0f req/s %.2f us CPU/req | host, log off %.0f req/s %.2f us | host, log on %.0f req/s %.2f us\n' \
  "$(col 1)" "$(col 4)" "$(col 2)" "$(col 5)" "$(col 3)" "$(col 6)"
printf 'host/plain (median of per-round ratios), requests/s: access log off %.1f%%, on %.1f%% (goal >= 90%%)\n' "$(ratio 2 1)" "$(ratio 3 1)"
printf 'host/plain by CPU per request: access log off %.1f%%, on %.1f%%; log on/off by CPU per request: %.1f%%\n' "$(ratio 4 5)" "$(ratio 4 6)" "$(ratio 5 6)"
