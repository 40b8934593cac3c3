#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for a bounded time and fails if any finds a crash.
#
#   bench/fuzz.sh                           # every target, 60 s each
#   FUZZ_SECONDS=300 bench/fuzz.sh path_clean with_spec
#
# Targets (fuzz/fuzz_targets/): path_clean (xbuild_http::path::clean), with_spec (the
# `--with`/`--replace` parser) and config_decode (a config text through what
# `host validate --config` runs). Needs the nightly toolchain (`rustup toolchain install
# nightly`); cargo-fuzz is installed with `cargo install cargo-fuzz --locked` if missing.
#
# The seeds in fuzz/seeds/<target>/ are copied into the corpus, fuzz/corpus/<target>/,
# which grows from run to run (it is not committed); fuzz/dicts/<target>.dict gives
# libFuzzer the tokens that matter to the target. A crash, timeout or out-of-memory input
# is written under fuzz/artifacts/<target>/; the script prints its path and how to replay
# it, goes on with the other targets and exits 1 at the end. Logs are kept in
# fuzz/target/fuzz-logs/<target>.log.
#
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_TIMEOUT (seconds one input may
# take before it counts as a hang, default 10), FUZZ_ARGS (more libFuzzer flags, e.g.
# `-max_len=256`).
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_ARGS=${FUZZ_ARGS:-}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=(path_clean with_spec config_decode)
fi

cargo +nightly --version >/dev/null 2>&1 || {
  echo "error: no nightly toolchain; install it with \`rustup toolchain install nightly\`" >&2
  exit 1
}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz not found; installing it..." >&2
  cargo install cargo-fuzz --locked
fi

echo "building the fuzz targets..." >&2
cargo +nightly fuzz build

logs=target/fuzz-logs
# config_decode writes each input to a file, as `load_file` reads one; keep those here.
export TMPDIR="$PWD/target/fuzz-tmp"
mkdir -p "$logs" "$TMPDIR"

failed=0
summary=()
for target in "${targets[@]}"; do
  corpus="corpus/$target"
  mkdir -p "$corpus" "artifacts/$target"
  if [ -d "seeds/$target" ]; then
    cp -n "seeds/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  echo "fuzzing $target for ${FUZZ_SECONDS}s..." >&2
  dict=()
  if [ -f "dicts/$target.dict" ]; then
    dict=(-dict="dicts/$target.dict")
  fi
  status=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  cargo +nightly fuzz run "$target" "$corpus" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -print_final_stats=1 \
    ${dict[@]+"${dict[@]}"} $FUZZ_ARGS >"$logs/$target.log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' | tail -1)
  corpus_size=$(find "$corpus" -type f | wc -l)
  artifacts=$(grep -o 'Test unit written to [^ ]*' "$logs/$target.log" | sed 's/^Test unit written to //' || true)
  if [ "$status" -ne 0 ] || [ -n "$artifacts" ]; then
    failed=1
    summary+=("$target: FAILED after ${runs:-?} executions (exit $status)")
    echo "error: $target failed; the end of $logs/$target.log:" >&2
    grep -v '^#[0-9]' "$logs/$target.log" | tail -40 >&2
    for artifact in $artifacts; do
      echo "  failing input: $artifact" >&2
      echo "  replay it with: (cd fuzz && cargo +nightly fuzz run $target $artifact)" >&2
    done
  else
    summary+=("$target: ok, ${runs:-?} executions, corpus of $corpus_size inputs")
  fi
done

echo >&2
printf '%s\n' "${summary[@]}"
exit "$failed"
