#!/usr/bin/env bash
# What the shared cache (XBUILD_CACHE_DIR) buys: a cold host build with an empty cache is
# the baseline; against it, the same build again and a rebuild with one more module crate.
# Usage: bench/xbuild_cache.sh   (prints a Markdown table; takes a minute or two)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p xbuild-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XBUILD_CACHE_DIR="$work/cache"
xbuild=target/release/xbuild
greeters="fixture-greeters=$PWD/tests/fixtures/fixture-greeters"
extra="fixture-extra=$PWD/tests/fixtures/fixture-extra"

seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.2f}')"
}

cold=$(seconds "$xbuild" -q --no-standard --with "$greeters" --output "$work/host")
same=$(seconds "$xbuild" -q --no-standard --with "$greeters" --output "$work/host")
plus=$(seconds "$xbuild" -q --no-standard --with "$greeters" --with "$extra" --output "$work/host")

python3 - "$cold" "$same" "$plus" <<'PY'
import sys
cold, same, plus = map(float, sys.argv[1:])
print("| build (release, static, selftest included) | seconds | against the cold build |")
print("|---|---|---|")
print(f"| cold: empty cache, one module crate (baseline) | {cold:.2f} | 1× |")
print(f"| warm: the same build again | {same:.2f} | {same / cold:.3f}× |")
print(f"| warm: one more module crate | {plus:.2f} | {plus / cold:.3f}× |")
PY
