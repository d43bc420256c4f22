#!/usr/bin/env bash
# The main job: a local, cluster-free run of Sluice. It starts the project's Kubernetes API test
# server, makes a git repository from examples/, runs sluice-controller, and shows with the real
# kubectl how an Application syncs, follows a new commit, heals a hand edit and prunes; then how a
# Canary (NGINX weights, judged by a local Prometheus scraping two test backends) promotes a good
# image and rolls back a bad one. Installs dependencies and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools-env.sh  # the pinned helm and kubectl first on PATH
scripts/install-deps.sh
scripts/build.sh release

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
cp -r examples/helm examples/kustomize "$work/repo/"
git init -q -b main "$work/repo"
git_repo add -A && git_repo commit -q -m "guestbook 1.0.0"
git_repo log --oneline
echo; ls "$work/repo/guestbook"

step "Starting sluice-controller"
# (kubectl create sends protobuf, which the test server does not speak; apply sends JSON.)
echo "+ kubectl apply --server-side -f - <<< 'namespace sluice'"
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: sluice\n' | kc apply --server-side -f -
prom_port=19083  # the demo's Prometheus, started in the canary section below
build/src/main/sluice-controller --kubeconfig "$KUBECONFIG" --control-namespace sluice \
  --repo-cache-dir "$work/repo-cache" --reconcile-interval 3m \
  --metrics-addr 127.0.0.1:19080 --health-addr 127.0.0.1:19081 --webhook-addr 127.0.0.1:19082 \
  --metrics-server "http://127.0.0.1:$prom_port" --render-dir "$work/sources" \
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
frontend_replicas_are() { [ "$(kc get deployment frontend -n guestbook -o jsonpath='{.spec.replicas}')" = "$1" ]; }
wait_for "self-heal" frontend_replicas_are 3
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

step "A Helm chart in git (examples/helm/web) and a Kustomize overlay (examples/kustomize/shop)"
# Rendered by the real helm and `kubectl kustomize`, as Argo CD renders them.
for f in web-helm shop-kustomize; do
  sed "s|REPO_URL|file://$work/repo|" "examples/applications/$f.yaml" >"$work/$f.yaml"
  k apply --server-side -f "$work/$f.yaml"
done
app_synced() { [ "$(kc get application "$1" -n sluice -o jsonpath='{.status.sync.status}/{.status.sync.revision}')" = "Synced/$2" ]; }
rev=$(git_repo rev-parse HEAD)
wait_for "the Helm Application" app_synced web "$rev"
wait_for "the Kustomize Application" app_synced shop "$rev"
app_healthy() { [ "$(kc get application "$1" -n sluice -o jsonpath='{.status.health.status}')" = Healthy ]; }
wait_for "the Helm Application's health" app_healthy web
wait_for "the Kustomize Application's health" app_healthy shop
k get applications -n sluice -o custom-columns='NAME:.metadata.name,TYPE:.status.sourceType,SYNC:.status.sync.status,HEALTH:.status.health.status,REVISION:.status.sync.revision'
k get deployments,services,configmaps -n web
k get deployment web -n web -o jsonpath='image={.spec.template.spec.containers[0].image} replicas={.spec.replicas}{"\n"}'
k get deployments,services,configmaps -n shop --show-labels
echo "+ kubectl sluice app manifests web -n sluice   # (first 12 lines)"
build/src/plugin/kubectl-sluice app manifests web -n sluice >"$work/manifests.yaml"
head -n 12 "$work/manifests.yaml"; echo

step "A new chart value in git: 3 replicas and another greeting; the Service template removed"
sed -i 's|replicaCount: 2|replicaCount: 3|; s|hello from prod|hello again|' "$work/repo/helm/web/values-prod.yaml"
git_repo rm -q helm/web/templates/service.yaml
git_repo commit -q -am "web: 3 replicas, no Service"
rev=$(git_repo rev-parse HEAD)
k annotate application web -n sluice sluice.io/refresh=normal --overwrite
wait_for "the Helm Application's new revision" app_synced web "$rev"
k get deployment web -n web -o jsonpath='replicas={.spec.replicas}{"\n"}'
k get configmap web-config -n web -o jsonpath='greeting={.data.greeting}{"\n"}'
k get services -n web
for a in web shop; do kc delete application "$a" -n sluice --wait=false >/dev/null; done

step "Canary: two test backends for podinfo's pods, and a local Prometheus scraping them"
# sluice-demo-traffic stands in for podinfo's primary and canary pods (each answers HTTP and
# exports http_requests_total at /metrics) and for its users: ~40 requests/s, split by the
# canary weight Sluice writes on the canary Ingress. A backend answers 500 while its
# Deployment's image contains "bad". It stops by itself after 10 minutes.
build/tests/support/demo/sluice-demo-traffic --kubeconfig "$KUBECONFIG" --namespace podinfo \
  --target podinfo --ingress podinfo-canary --rps 40 --duration 600 \
  --prometheus-config "$work/prometheus.yml" >"$work/traffic.log" 2>&1 &
pids+=($!)
wait_for "the test backends" test -s "$work/prometheus.yml"
head -n 2 "$work/traffic.log"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
# prom_query PROMQL: an instant query, answered on stdout (bash's /dev/tcp: no curl needed).
prom_query() {
  local q
  q=$(url_encode "$1")
  exec 3<>"/dev/tcp/127.0.0.1/$prom_port" || return 1
  printf 'GET /api/v1/query?query=%s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$q" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
url_encode() {  # percent-encodes a query parameter
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in [a-zA-Z0-9._~-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}
targets_up() { [[ "$(prom_query 'count(up == 1) >= 2' 2>/dev/null)" == *'"result":[{'* ]]; }
# (The first scrape comes ~6 s after start: Prometheus applies new targets on a 5 s tick.)
for _ in $(seq 150); do targets_up && break; sleep 0.2; done  # up to 30 s
if ! targets_up; then
  echo "demo: timed out waiting for Prometheus to scrape both backends" >&2
  echo "--- prometheus log (last 20 lines)" >&2; tail -n 20 "$work/prometheus.log" >&2
  echo "--- traffic log" >&2; tail -n 5 "$work/traffic.log" >&2
  exit 1
fi
echo "+ prometheus on 127.0.0.1:$prom_port: sum by (pod) (http_requests_total)"
prom_query 'sum by (pod) (http_requests_total)' | grep -o '"pod":"[^"]*"},"value":\[[^]]*\]' || true

step "Canary: examples/podinfo in git (Deployment, Ingress, Canary, MetricTemplate) and its Application"
cp -r examples/podinfo "$work/repo/podinfo"
git_repo add podinfo && git_repo commit -q -m "podinfo 6.7.0, delivered by a canary"
git_repo log --oneline -1
sed "s|REPO_URL|file://$work/repo|" examples/applications/podinfo.yaml >"$work/podinfo-app.yaml"
k apply --server-side -f "$work/podinfo-app.yaml"
canary_field() { kc get canary podinfo -n podinfo -o jsonpath="$1"; }
podinfo_synced_at() {
  [ "$(kc get application podinfo -n sluice -o jsonpath='{.status.sync.status}/{.status.sync.revision}')" = "Synced/$1" ]
}
wait_for "the podinfo sync" podinfo_synced_at "$(git_repo rev-parse HEAD)"
# There is no NGINX ingress controller here (sluice-demo-traffic routes the requests), so the
# demo publishes the Ingress' address as one would; until then the Ingress, and with it the
# Application, is Progressing.
echo "+ kubectl patch ingress podinfo -n podinfo --subresource=status (what the ingress controller does)"
kc patch ingress podinfo -n podinfo --subresource=status --type merge \
  -p '{"status":{"loadBalancer":{"ingress":[{"ip":"127.0.0.1"}]}}}' >/dev/null
canary_phase_is() { [ "$(canary_field '{.status.phase}')" = "$1" ]; }
wait_for "the Canary to initialise" canary_phase_is Initialized
app_health_is() { [ "$(kc get application podinfo -n sluice -o jsonpath='{.status.health.status}')" = "$1" ]; }
wait_for "the podinfo Application to be Healthy" app_health_is Healthy
k get applications,canaries -A
k get deployments,services,ingresses -n podinfo
k get events -n podinfo --field-selector reason=Initialized

# follow_canary PHASE: prints `kubectl get applications,canaries -A` whenever the Canary's phase,
# weight or failed checks change, until it reaches PHASE (at most 120 s).
follow_canary() {
  local want=$1 last="" now deadline=$((SECONDS + 120))
  while ((SECONDS < deadline)); do
    now=$(canary_field '{.status.phase} weight={.status.canaryWeight} failedChecks={.status.failedChecks}' 2>/dev/null || true)
    if [ "$now" != "$last" ]; then
      echo "+ kubectl get applications,canaries -A    # $(date -u +%T) $now"
      kc get applications,canaries -A
      echo
      last=$now
    fi
    [ "${now%% *}" = "$want" ] && return 0
    sleep 0.2
  done
  echo "demo: timed out waiting for the Canary to reach $want" >&2
  echo "--- controller log (last 40 lines)" >&2; tail -n 40 "$work/controller.log" >&2
  echo "--- traffic (last 5 lines)" >&2; tail -n 5 "$work/traffic.log" >&2
  exit 1
}
podinfo_image() { kc get deployment "$1" -n podinfo -o jsonpath='{.spec.template.spec.containers[0].image}'; }
refresh_podinfo() { kc annotate application podinfo -n sluice sluice.io/refresh=normal --overwrite >/dev/null; }

step "Canary: a new image (6.7.1) in git; Sluice moves traffic 20 % per step while Prometheus says the canary is healthy"
sed -i 's|podinfo:6.7.0|podinfo:6.7.1|' "$work/repo/podinfo/deployment.yaml"
git_repo commit -q -am "podinfo 6.7.1"
git_repo log --oneline -1
refresh_podinfo
follow_canary Succeeded
# The Application's health follows the Canary's: Progressing while it runs, Healthy once promoted.
wait_for "the podinfo Application to be Healthy" app_health_is Healthy
k get applications,canaries -A
echo "primary image: $(podinfo_image podinfo-primary)"
k get ingress podinfo-canary -n podinfo \
  -o jsonpath='canary={.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary} weight={.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary-weight}{"\n"}'
k get events -n podinfo --field-selector reason=Advance
echo "+ tail -n 3 traffic.log   # sluice-demo-traffic, every 5 s"; tail -n 3 "$work/traffic.log"

step "Canary: a bad image (6.7.2-bad) in git; its canary answers 500, two failed checks roll it back"
sed -i 's|podinfo:6.7.1|podinfo:6.7.2-bad|' "$work/repo/podinfo/deployment.yaml"
git_repo commit -q -am "podinfo 6.7.2-bad"
git_repo log --oneline -1
refresh_podinfo
follow_canary Failed
echo "primary image: $(podinfo_image podinfo-primary) (still the last good one)"
k get ingress podinfo-canary -n podinfo \
  -o jsonpath='canary={.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary} weight={.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary-weight}{"\n"}'
k get events -n podinfo --field-selector reason=Halt -o custom-columns=TYPE:.type,REASON:.reason,COUNT:.count,MESSAGE:.message
k get events -n podinfo --field-selector reason=RollingBack
k get events -n podinfo --field-selector reason=Failed
echo "+ tail -n 3 traffic.log   # sluice-demo-traffic, every 5 s"; tail -n 3 "$work/traffic.log"

step "Done (controller log: the last lines)"
tail -n 15 "$work/controller.log"
