#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (every library instrumented, with
# AddressSanitizer and UndefinedBehaviorSanitizer) and runs each from its committed seed corpus
# (tests/fuzz/corpus/<target>, copied: the run never writes into the repository) for RUNS
# inputs with a fixed SEED, so that a run is repeatable (CI's is the same as a developer's), and
# at most 120 s. Any crash, sanitizer report, leak or slow input (10 s) fails. Usage:
#   scripts/fuzz.sh [RUNS (default 40000)] [SEED (default 1; 0 = a new one each time)]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-40000}"
seed="${2:-1}"
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
  echo "fuzz: $target, $runs runs, seed $seed"
  build-fuzz/tests/fuzz/fuzz_"$target" -runs="$runs" -seed="$seed" -max_total_time=120 -timeout=10 \
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
