#!/usr/bin/env bash
# The main job: a local, cluster-free run of Sluice. It starts the project's Kubernetes API test
# server, makes a git repository from examples/, runs sluice-controller, and shows with the real
# kubectl how an Application syncs, follows a new commit, heals a hand edit and prunes.
# Installs dependencies and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
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
export HOME="$work/home"  # keep kubectl's cache and git's config out of the user's home
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com
mkdir -p "$HOME"
kc() { kubectl --cache-dir "$work/kube-cache" "$@"; }
k() { echo "+ kubectl $*"; kc "$@"; echo; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# wait_for DESCRIPTION COMMAND...: polls the command (up to 60 s) until it succeeds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "demo: timed out waiting for $what" >&2
  echo "--- controller log (last 40 lines)" >&2; tail -n 40 "$work/controller.log" >&2
  exit 1
}
app_field() { kc get application guestbook -n sluice -o jsonpath="$1"; }
synced_at() { [ "$(app_field '{.status.sync.status}/{.status.sync.revision}')" = "Synced/$1" ]; }
git_repo() { git -C "$work/repo" "$@"; }

step "Starting the Kubernetes API test server (TLS, token auth) on loopback, with Sluice's CRDs"
build/tests/support/apiserver/sluice-test-apiserver --port 0 --kubeconfig-out "$KUBECONFIG" \
  --crds crds/*.yaml >"$work/apiserver.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$KUBECONFIG" ] && break; sleep 0.1; done
[ -s "$KUBECONFIG" ] || { cat "$work/apiserver.log"; exit 1; }
k get crds

step "A git repository made from examples/guestbook"
mkdir -p "$work/repo"
cp -r examples/guestbook "$work/repo/guestbook"
git init -q -b main "$work/repo"
git_repo add -A && git_repo commit -q -m "guestbook 1.0.0"
git_repo log --oneline
echo; ls "$work/repo/guestbook"

step "Starting sluice-controller"
# (kubectl create sends protobuf, which the test server does not speak; apply sends JSON.)
echo "+ kubectl apply --server-side -f - <<< 'namespace sluice'"
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: sluice\n' | kc apply --server-side -f -
build/src/main/sluice-controller --kubeconfig "$KUBECONFIG" --control-namespace sluice \
  --repo-cache-dir "$work/repo-cache" --reconcile-interval 3m \
  --metrics-addr 127.0.0.1:19080 --health-addr 127.0.0.1:19081 --webhook-addr 127.0.0.1:19082 \
  >"$work/controller.log" 2>&1 &
pids+=($!)
wait_for "the controller to start" grep -q "application controller started" "$work/controller.log"

step "An Argo CD style Application (examples/applications/guestbook.yaml) pointing at the repo"
sed "s|REPO_URL|file://$work/repo|" examples/applications/guestbook.yaml >"$work/app.yaml"
k apply --server-side -f "$work/app.yaml"
rev=$(git_repo rev-parse HEAD)
wait_for "the first sync" synced_at "$rev"
k get applications -n sluice
k get deployments,services,configmaps -n guestbook
k get deployment frontend -n guestbook -o jsonpath='{.metadata.annotations.sluice\.io/tracking-id}{"\n"}'

step "A new commit: image 1.1.0 and 3 replicas; a refresh annotation (what a git webhook does)"
sed -i 's|frontend:1.0.0|frontend:1.1.0|; s|replicas: 2|replicas: 3|' "$work/repo/guestbook/frontend.yaml"
git_repo commit -q -am "guestbook 1.1.0, 3 replicas"
rev=$(git_repo rev-parse HEAD)
git_repo log --oneline
k annotate application guestbook -n sluice sluice.io/refresh=normal --overwrite
wait_for "the sync of the new commit" synced_at "$rev"
k get applications -n sluice
k get deployment frontend -n guestbook \
  -o jsonpath='{.spec.template.spec.containers[0].image} replicas={.spec.replicas}{"\n"}'
k get application guestbook -n sluice -o jsonpath='{range .status.history[*]}{.id} {.revision} {.deployedAt}{"\n"}{end}'

step "Drift by hand: someone scales the Deployment to 5; selfHeal puts git's 3 back"
k patch deployment frontend -n guestbook --type merge -p '{"spec":{"replicas":5}}'
wait_for "self-heal" test "$(kc get deployment frontend -n guestbook -o jsonpath='{.spec.replicas}')" = 3
k get deployment frontend -n guestbook -o jsonpath='replicas={.spec.replicas}{"\n"}'
k get events -n sluice --field-selector reason=DriftCorrected

step "Prune: the ConfigMap is removed from git, so Sluice deletes it from the cluster"
sed -i '1,/^---$/d' "$work/repo/guestbook/frontend.yaml"  # the ConfigMap is the first document
git_repo commit -q -am "drop frontend-config"
rev=$(git_repo rev-parse HEAD)
k annotate application guestbook -n sluice sluice.io/refresh=normal --overwrite
wait_for "the prune" synced_at "$rev"
k get configmaps -n guestbook
k get applications -n sluice

step "kubectl describe: status, history and Events"
k describe application guestbook -n sluice

step "Deleting the Application: its finalizer deletes what it deployed"
k delete application guestbook -n sluice --wait=true --timeout=60s
k get deployments,services,configmaps -n guestbook

step "Done (controller log: the last lines)"
tail -n 15 "$work/controller.log"
