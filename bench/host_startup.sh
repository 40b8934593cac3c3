#!/usr/bin/env bash
# How fast a built host starts: a one-shot command (`version`, `validate`) against
# `/bin/true` as the baseline of starting any process, and `run` from spawn to its first
# complete HTTP 200 on examples/hello.toml (127.0.0.1:8080).
#
#   bench/host_startup.sh [HOST]     # default: the suite's standard host
#                                    # (target/tmp/standard-host/host, built by `cargo test`)
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${1:-target/tmp/standard-host/host}
[[ -x $HOST ]] || { echo "error: no host at $HOST; build one with xbuild or run the suite" >&2; exit 1; }
python3 - "$HOST" <<'PY'
import socket, subprocess, sys, time

host = sys.argv[1]

def each(command, n=50):
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) / n * 1000

baseline = each(["/bin/true"])
print(f"/bin/true                 {baseline:6.2f} ms (baseline)")
for args in (["version"], ["validate", "--config", "examples/hello.toml"]):
    took = each([host, *args])
    print(f"host {' '.join(args[:1]):<20} {took:6.2f} ms ({took / baseline:.1f}x)")

times = []
for _ in range(10):
    start = time.perf_counter()
    server = subprocess.Popen([host, "run", "--config", "examples/hello.toml"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", 8080), timeout=0.1) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if c.recv(100).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            time.sleep(0.0005)
    times.append((time.perf_counter() - start) * 1000)
    server.terminate()
    server.wait()
times.sort()
print(f"host run to first 200    {times[len(times) // 2]:6.2f} ms median of 10 (min {times[0]:.2f})")
PY
