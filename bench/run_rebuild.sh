#!/usr/bin/env bash
# The module author's loop: how long `xbuild run -- version` takes after an edit to a new
# module crate (rebuild of the crate, relink of the dev host, run), against the baseline
# of plain `cargo build` of the same crate after the same edit. Uses its own xbuild cache;
# the first (cold) build is not timed.
#
#   bench/run_rebuild.sh            # ROUNDS=5 by default
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
cargo build --release -q -p xbuild-cli
XBUILD=$PWD/target/release/xbuild
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XBUILD_CACHE_DIR=$work/cache
cd "$work"
"$XBUILD" new bench-mod 2>/dev/null
cd bench-mod
"$XBUILD" run -- version >/dev/null 2>&1
cargo build -q 2>/dev/null
ms() { local start=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - start) / 1000000 )); }
edit() { sed -i "s/\"hello\".into()/\"hello$1\".into()/; s/\"hello[0-9]*\".into()/\"hello$1\".into()/" src/lib.rs; }
run_total=0; cargo_total=0
for round in $(seq "$ROUNDS"); do
  edit "$round"
  run_ms=$(ms "$XBUILD" run -- version)
  edit "$round$round"
  cargo_ms=$(ms cargo build)
  echo "round $round: xbuild run after an edit ${run_ms} ms | cargo build after an edit ${cargo_ms} ms"
  run_total=$((run_total + run_ms)); cargo_total=$((cargo_total + cargo_ms))
done
echo "mean: xbuild run $((run_total / ROUNDS)) ms, cargo build $((cargo_total / ROUNDS)) ms, ratio $(( run_total * 100 / cargo_total ))%"
