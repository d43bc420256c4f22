#!/usr/bin/env bash
# Installs what Sluice needs to build, test and run its demo on Debian 12.
# Idempotent: installs only the packages that are missing, and does nothing when all are there.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git ca-certificates openssl procps
  libcpprest-dev nlohmann-json3-dev libyaml-cpp-dev libgit2-dev libspdlog-dev libssl-dev
  libgtest-dev libgmock-dev
  prometheus  # real server for the canary metric tests (tests/support/prometheus)
)

missing=()
for p in "${packages[@]}"; do
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
else
  echo "install-deps: all packages present"
fi

# kubectl is used by the kubectl compatibility tests and the demo. Debian 12 has no current
# kubectl package; machines that have one (for example from the Kubernetes apt repository)
# run those tests, others skip them with a message.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "install-deps: kubectl not found on PATH; kubectl tests will be skipped" >&2
fi
