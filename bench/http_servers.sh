# Sourced by bench/http_throughput.sh and bench/http_instructions.sh: checks the tools they
# need, builds the two servers, and writes the host's configs with the access log off and on.
#
#   require wrk valgrind          # each tool, or an error saying how to install it
#   setup_servers WORKERS         # sets HOST_BIN, PLAIN_BIN, work (a temp dir removed at exit)
#                                 # and writes $work/host-log-{false,true}.toml
# A script that starts a server keeps its PID in `server_pid`, so the exit trap stops it.

HOST_ADDR=127.0.0.1:18080
PLAIN_ADDR=127.0.0.1:18081

require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found; install it with \`apt-get install -y $tool\`" >&2; exit 1; }
  done
}

setup_servers() { # workers
  echo "building (release)..." >&2
  cargo build --quiet --release -p xbuild-standard --example host
  cargo build --quiet --release --manifest-path bench/plain-hyper/Cargo.toml --target-dir target
  HOST_BIN=target/release/examples/host
  PLAIN_BIN=target/release/plain-hyper

  work=$(mktemp -d)
  server_pid=
  trap 'cleanup_servers' EXIT
  local log
  for log in false true; do
    sed -e "s/^worker_threads = .*/worker_threads = $1/" \
        -e "s/^access_log = .*/access_log = $log/" \
        bench/hello-bench.toml >"$work/host-log-$log.toml"
  done
}

cleanup_servers() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
