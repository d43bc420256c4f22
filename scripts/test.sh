#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, and runs every test twice, in the
# release build and in the AddressSanitizer + UndefinedBehaviorSanitizer build; in between,
# every fuzz target of tests/fuzz runs for a bounded time (scripts/fuzz.sh).
# SLUICE_SANITIZE=0 skips the sanitizer pass and SLUICE_FUZZ=0 the fuzzing (quicker local
# runs); CI always runs all three.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools-env.sh  # the pinned helm and kubectl first on PATH
scripts/install-deps.sh

jobs="${SLUICE_JOBS:-$(nproc)}"
run_suite() {
  local dir="$1"
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure --timeout 600
}

scripts/build.sh release
run_suite build

if [ "${SLUICE_FUZZ:-1}" != "0" ]; then
  scripts/fuzz.sh "${SLUICE_FUZZ_RUNS:-40000}" "${SLUICE_FUZZ_SEED:-1}"
fi

if [ "${SLUICE_SANITIZE:-1}" != "0" ]; then
  scripts/build.sh asan
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
  export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  run_suite build-asan
fi
