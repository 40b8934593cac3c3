#!/usr/bin/env bash
# The server's memory under the HTTP/2 never-read attack: CONNECTIONS (20) connections from
# one script, each announcing the largest flow-control windows and opening 100 streams of a
# 64 MiB file, never reading. Prints the host's resident memory before, every 5 s during
# (it levels off: the memory is bounded) and its peak, per connection and per stream. Per
# stream it is the HTTP/2 send buffer (64 KiB, H2_SEND_BUFFER in modules/http/src/server.rs)
# and what the handler has read ahead; write_timeout (60 s) then closes the connections.
#
#   bench/h2_never_read.sh                 # CONNECTIONS=20 STREAMS=100 HOLD=20 (seconds)
#
# Needs python3 (a venv with the `h2` package is made in target/bench-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-20}
STREAMS=${STREAMS:-100}
SECONDS_HELD=${HOLD:-20}
ADDR_PORT=18090

echo "building (release)..." >&2
cargo build --quiet --release -p xbuild-standard --example host
venv=target/bench-venv
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import h2' 2>/dev/null || "$venv/bin/pip" install --quiet 'h2>=4,<5'

work=$(mktemp -d)
host_pid=
attack_pid=
trap '{ [[ -n $attack_pid ]] && kill $attack_pid; [[ -n $host_pid ]] && kill $host_pid; wait; } 2>/dev/null; rm -rf "$work"' EXIT
head -c $((64 << 20)) /dev/urandom >"$work/big.bin"
cat >"$work/h2.toml" <<TOML
[apps.http]
worker_threads = 2
[apps.http.servers.main]
listen = ["127.0.0.1:$ADDR_PORT"]
protocols = ["h2c"]
access_log = false
max_connections_per_client = $((CONNECTIONS + 1))
[[apps.http.servers.main.routes]]
handle = [{ handler = "file_server", root = "$work" }]
TOML
target/release/examples/host run --config "$work/h2.toml" 2>/dev/null &
host_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$ADDR_PORT) 2>/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$host_pid/status"; }
sleep 1
before=$(rss)
"$venv/bin/python" bench/h2_never_read.py 127.0.0.1 $ADDR_PORT /big.bin "$CONNECTIONS" "$STREAMS" "$SECONDS_HELD" &
attack_pid=$!
peak=$before
end=$((SECONDS + SECONDS_HELD))
samples=()
tick=0
while ((SECONDS < end)) && kill -0 $attack_pid 2>/dev/null; do
  now=$(rss)
  ((now > peak)) && peak=$now
  # Every 5 s, to show whether it levels off or keeps growing.
  ((tick % 10 == 0)) && samples+=("$((now / 1024))")
  tick=$((tick + 1))
  sleep 0.5
done
bound_kib=$((STREAMS * 64))
echo "connections=$CONNECTIONS streams=$STREAMS held=${SECONDS_HELD}s"
echo "host RSS every 5 s (MiB): ${samples[*]}"
echo "host RSS before: $((before / 1024)) MiB; peak under attack: $((peak / 1024)) MiB; growth: $(((peak - before) / 1024)) MiB"
echo "growth per connection: $(((peak - before) / CONNECTIONS)) KiB, per stream: $(((peak - before) / CONNECTIONS / STREAMS)) KiB (of which at most 64 KiB is the HTTP/2 send buffer: ${bound_kib} KiB a connection)"
