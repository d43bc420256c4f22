#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (every library instrumented, with
# AddressSanitizer and UndefinedBehaviorSanitizer) and runs each for a bounded time from its
# committed seed corpus (tests/fuzz/corpus/<target>, copied: the run never writes into the
# repository). Any crash, sanitizer report, leak or timeout fails. Usage:
#   scripts/fuzz.sh [SECONDS_PER_TARGET (default 20)]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
jobs="${SLUICE_JOBS:-$(nproc)}"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DCMAKE_CXX_COMPILER=clang++ \
  -DSLUICE_FUZZ=ON -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz_all
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
for target in yaml toolOutput kubeconfig webhook prometheus knownHosts; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: $target for ${seconds}s"
  build-fuzz/tests/fuzz/fuzz_"$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 "$corpus" \
    -artifact_prefix="$work/$target-" 2>"$work/$target.log" || {
      tail -n 60 "$work/$target.log"
      echo "fuzz: $target failed (artifacts above)" >&2
      exit 1
    }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/$target.log" | tr '\n' ' '
  echo
done
echo "fuzz: all targets passed"
