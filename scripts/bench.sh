#!/usr/bin/env bash
# Builds (release) and runs the benchmarks; each prints its own figures.
#   scripts/bench.sh            all benchmarks
#   scripts/bench.sh kube|app|canary|source|e2e   one of them (further arguments go to it)
#   scripts/bench.sh e2e --kubeconfig ~/.kube/config   the controller process against a cluster
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools-env.sh  # the pinned helm and kubectl first on PATH
scripts/install-deps.sh
scripts/build.sh release
which="${1:-all}"
[[ $# -gt 0 ]] && shift
case "$which" in
  kube) build/bench/sluice-bench-kube "$@" ;;
  app) build/bench/sluice-bench-app "$@" ;;
  canary) build/bench/sluice-bench-canary "$@" ;;
  source) build/bench/sluice-bench-source "$@" ;;
  e2e) build/bench/sluice-bench-e2e "$@" ;;
  all)
    build/bench/sluice-bench-e2e
    build/bench/sluice-bench-kube
    build/bench/sluice-bench-app
    build/bench/sluice-bench-canary
    build/bench/sluice-bench-source
    ;;
  *) echo "usage: scripts/bench.sh [kube|app|canary|source|e2e|all] [args...]" >&2; exit 2 ;;
esac
