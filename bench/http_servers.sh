# Sourced by bench/http_throughput.sh and bench/http_instructions.sh: checks the tools they
# need, builds the two servers, and writes the host's configs with the access log off and on.
#
#   require wrk valgrind          # each tool, or an error saying how to install it
#   setup_servers WORKERS         # sets HOST_BIN, PLAIN_BIN, PLAIN_ARGS, SCHEME, work (a temp
#                                 # dir removed at exit) and writes $work/host-log-{false,true}.toml
# With TLS=1 both servers speak HTTPS (HTTP/1.1 over TLS 1.3) with a certificate made for
# the run: plain-hyper over rustls, and a host with xbuild-tls (modules/tls/examples/https_host.rs).
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
  cargo build --quiet --release --manifest-path bench/plain-hyper/Cargo.toml --target-dir target
  PLAIN_BIN=target/release/plain-hyper
  PLAIN_ARGS=("$PLAIN_ADDR")
  SCHEME=http
  local template=bench/hello-bench.toml
  work=$(mktemp -d)
  server_pid=
  trap 'cleanup_servers' EXIT
  if [[ ${TLS:-0} == 1 ]]; then
    require openssl
    # Named apart from the standard host: both would be target/release/examples/host.
    cargo build --quiet --release -p xbuild-tls --example https_host
    HOST_BIN=target/release/examples/https_host
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
      -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
      -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    PLAIN_ARGS+=(--tls "$work/cert.pem" "$work/key.pem")
    SCHEME=https
    HOST_ADDR=127.0.0.1:18443
    template=bench/https-bench.toml
  else
    cargo build --quiet --release -p xbuild-standard --example host
    HOST_BIN=target/release/examples/host
  fi
  local log
  for log in false true; do
    sed -e "s/^worker_threads = .*/worker_threads = $1/" \
        -e "s/^access_log = .*/access_log = $log/" \
        -e "s|\"CERT\"|\"$work/cert.pem\"|" -e "s|\"KEY\"|\"$work/key.pem\"|" \
        "$template" >"$work/host-log-$log.toml"
  done
}

cleanup_servers() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
