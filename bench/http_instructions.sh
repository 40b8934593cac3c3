#!/usr/bin/env bash
# User-space instructions per request of the plain hyper server, the host with its access
# log off and the host with it on (the default), counted by valgrind's callgrind under a
# wrk load. Unlike requests/s (bench/http_throughput.sh), the count does not move with the
# machine's other load, so it shows what a change to the request path costs, to within a
# percent or so, in one run. It leaves out the kernel's share (about 60% of the servers' CPU
# time on loopback), so its ratios are lower than the requests/s ratios.
#
#   bench/http_instructions.sh             # needs wrk and valgrind (apt-get install -y wrk valgrind)
#   DURATION=20s bench/http_instructions.sh
#
# Each server runs under callgrind twice: idle (start and stop only) and under load; the
# difference divided by the requests wrk completed is the cost per request.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
source bench/http_servers.sh
require wrk valgrind
setup_servers 1

count() { # name addr load(yes/no) command... -> "instructions requests"
  local name=$1 addr=$2 load=$3; shift 3
  XBUILD_LOG=info valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "$@" \
    >/dev/null 2>"$work/$name.log" &
  server_pid=$!
  for _ in $(seq 300); do curl -fs "http://$addr/" >/dev/null && break; sleep 0.2; done
  local requests=1
  if [[ $load == yes ]]; then
    requests=$(( $(wrk -t1 -c8 -d"$DURATION" "http://$addr/" | awk '/requests in/ { print $1 }') + 1 ))
  fi
  kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  echo "$(awk '/^(summary|totals):/ { print $2; exit }' "$work/$name.out") $requests"
}

per_request() { # name addr command... -> instructions per request
  local name=$1 addr=$2; shift 2
  local idle loaded
  read -r idle _ <<<"$(count "$name-idle" "$addr" no "$@")"
  read -r loaded requests <<<"$(count "$name" "$addr" yes "$@")"
  echo $(( (loaded - idle) / requests ))
}

plain=$(per_request plain "$PLAIN_ADDR" "$PLAIN_BIN" "$PLAIN_ADDR")
off=$(per_request host-log-false "$HOST_ADDR" "$HOST_BIN" run --config "$work/host-log-false.toml")
on=$(per_request host-log-true "$HOST_ADDR" "$HOST_BIN" run --config "$work/host-log-true.toml")
echo "instructions per request (user space): plain $plain | host, access log off $off | host, access log on $on"
awk -v p="$plain" -v f="$off" -v n="$on" 'BEGIN {
  printf "plain/host: access log off %.1f%%, on %.1f%%; the access log costs %d instructions per request\n",
    100 * p / f, 100 * p / n, n - f }'
