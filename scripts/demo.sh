#!/usr/bin/env bash
# The main job: a local, cluster-free run of Sluice against the project's Kubernetes API test
# server, driven and inspected with the real kubectl. Installs dependencies and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/install-deps.sh
scripts/build.sh release

if ! command -v kubectl >/dev/null 2>&1; then
  echo "demo: kubectl is required on PATH to show the cluster state" >&2
  exit 1
fi

work=$(mktemp -d /tmp/sluice-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export KUBECONFIG="$work/kubeconfig"
export HOME="$work/home"  # keep kubectl's cache out of the user's home
mkdir -p "$HOME"
k() { echo "+ kubectl $*"; kubectl --cache-dir "$work/kube-cache" "$@"; echo; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting the Kubernetes API test server (TLS, token auth) on loopback"
build/tests/support/apiserver/sluice-test-apiserver --port 0 --kubeconfig-out "$KUBECONFIG" \
  >"$work/apiserver.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$KUBECONFIG" ] && break; sleep 0.1; done
[ -s "$KUBECONFIG" ] || { cat "$work/apiserver.log"; exit 1; }
k version

step "Starting sluice-controller"
build/src/main/sluice-controller --kubeconfig "$KUBECONFIG" --log-level info \
  >"$work/controller.log" 2>&1 &
pids+=($!)
sleep 1

step "Applying the guestbook example with kubectl (server-side apply)"
k apply --server-side -f examples/guestbook/namespace.yaml
k apply --server-side -f examples/guestbook/frontend.yaml
sleep 1
k get deployments,services,configmaps -n guestbook
k get deployment frontend -n guestbook -o jsonpath='{.metadata.managedFields[*].manager}{"\n"}'

step "A change by hand and a deletion: the controller's cache follows both through its watch"
k patch deployment frontend -n guestbook --type merge -p '{"spec":{"replicas":3}}'
k delete configmap frontend-config -n guestbook
sleep 1

step "What the controller's watch cache saw"
sed -n '1,40p' "$work/controller.log"

step "Done"
