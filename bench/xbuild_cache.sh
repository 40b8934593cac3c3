#!/usr/bin/env bash
# What the xbuild cache (XBUILD_CACHE_DIR) buys, measured in one run against the cold
# build as baseline: the same build again (a result-cache hit: no compiling), a build with
# one more module crate (compiled dependencies reused), and the cache's size after 20 builds
# of different module sets.
# Usage: bench/xbuild_cache.sh   (prints a Markdown table; takes two or three minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p xbuild-cli
xbuild=$PWD/target/release/xbuild
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XBUILD_CACHE_DIR="$work/cache"

# Small module crates as a module author would write them, outside any workspace.
for i in $(seq 0 21); do
  dir="$work/mods/bench-mod-$i"
  mkdir -p "$dir/src"
  cat >"$dir/Cargo.toml" <<EOF
[package]
name = "bench-mod-$i"
version = "0.1.0"
edition = "2021"

[dependencies]
xbuild-core = "0.1"
serde = { version = "1", features = ["derive"] }
EOF
  cat >"$dir/src/lib.rs" <<EOF
#[derive(serde::Deserialize)]
struct M {}
impl xbuild_core::Module for M {}
xbuild_core::register_module!("bench.mod$i", M);
EOF
done
mod() { echo "--with bench-mod-$1=$work/mods/bench-mod-$1"; }

seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}

cd "$work"
# shellcheck disable=SC2046
cold=$(seconds "$xbuild" -q --no-standard $(mod 0) --output "$work/host")
after_cold=$(du -sb "$XBUILD_CACHE_DIR" | cut -f1)
noops=()
for _ in 1 2 3 4 5; do
  # shellcheck disable=SC2046
  noops+=("$(seconds "$xbuild" -q --no-standard $(mod 0) --output "$work/host")")
done
# shellcheck disable=SC2046
plus=$(seconds "$xbuild" -q --no-standard $(mod 0) $(mod 21) --output "$work/host")
for i in $(seq 1 20); do
  # shellcheck disable=SC2046
  "$xbuild" -q --no-standard $(mod 0) $(mod "$i") --output "$work/host-$i"
done
size=$(du -sb "$XBUILD_CACHE_DIR" | cut -f1)
hosts=$(du -sb "$XBUILD_CACHE_DIR/hosts" | cut -f1)

python3 - "$cold" "$plus" "$size" "$hosts" "$after_cold" "${noops[@]}" <<'PY'
import statistics, sys
cold, plus = float(sys.argv[1]), float(sys.argv[2])
size, hosts, after_cold = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
noop = statistics.median(map(float, sys.argv[6:]))
print("| build (release, static, selftest included) | seconds | against the cold build |")
print("|---|---|---|")
print(f"| cold: empty cache, one module crate (baseline) | {cold:.2f} | 1× |")
print(f"| no-op: the same build again (result cache; median of 5) | {noop:.3f} | {noop / cold:.4f}× |")
print(f"| add one module crate | {plus:.2f} | {plus / cold:.3f}× |")
print()
mib = 1024 * 1024
print(f"Cache after the cold build: {after_cold / mib:.0f} MiB. After 22 builds of 22 module sets "
      f"(the ones above, then 20 more): {size / mib:.0f} MiB, of which {hosts / mib:.0f} MiB are the "
      f"22 cached hosts; {(size - after_cold) / mib / 21:.1f} MiB more per build.")
PY
