#!/usr/bin/env bash
# Builds (release) and runs the benchmarks; each prints its own figures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
build/bench/sluice-bench-kube "$@"
