#!/usr/bin/env bash
# What a shared sccache gives xbuild builds: the default host (standard modules) built
# three times with RUSTC_WRAPPER=sccache and one local-disk sccache directory, each time
# with an empty xbuild cache: (a) sccache cold; (b) sccache warm, another XBUILD_CACHE_DIR
# path; (c) sccache warm, the same XBUILD_CACHE_DIR path as (a) after emptying it (another
# machine or CI runner with the same path); then (d) the same without sccache, the
# baseline. Prints wall times, sccache's hit counts and the hosts' sha256.
#
#   SCCACHE=/path/to/sccache bench/sccache.sh     # default: sccache on PATH
#
# Needs sccache 0.10 or newer (`cargo install sccache --locked`): older ones, such as
# Debian bookworm's 0.4.0~pre6, cache no rustc call that has --remap-path-prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
SCCACHE=${SCCACHE:-sccache}
cargo build --release -q -p xbuild-cli
XBUILD=$PWD/target/release/xbuild
work=$(mktemp -d)
trap 'SCCACHE_DIR=$work/sccache "$SCCACHE" --stop-server >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export SCCACHE_DIR=$work/sccache
"$SCCACHE" --stop-server >/dev/null 2>&1 || true
"$SCCACHE" --start-server >/dev/null
mkdir -p "$work/out"
stats() {
  "$SCCACHE" --show-stats | grep -E '^(Compile requests|Cache hits|Cache misses|Non-cacheable calls) ' || true
  "$SCCACHE" --zero-stats >/dev/null
}
build() { # label cache-dir output [env...]
  local label=$1 cache=$2 out=$3; shift 3
  local start ms
  start=$(date +%s%N)
  env "$@" XBUILD_CACHE_DIR="$cache" "$XBUILD" --output "$out" -q
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '%s: %d.%01d s\n' "$label" $((ms / 1000)) $((ms % 1000 / 100))
}
build "a (sccache cold)" "$work/cache-1" "$work/out/a" RUSTC_WRAPPER="$SCCACHE"
stats
build "b (sccache warm, another cache path)" "$work/cache-2" "$work/out/b" RUSTC_WRAPPER="$SCCACHE"
stats
rm -rf "$work/cache-1"
build "c (sccache warm, same cache path, emptied)" "$work/cache-1" "$work/out/c" RUSTC_WRAPPER="$SCCACHE"
stats
rm -rf "$work/cache-1"
build "d (no sccache, same cache path, emptied)" "$work/cache-1" "$work/out/d" -u RUSTC_WRAPPER
sha256sum "$work"/out/?
