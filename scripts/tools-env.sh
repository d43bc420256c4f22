# shellcheck shell=bash
# Sourced by the scripts: the directory of the helm and kubectl that scripts/install-deps.sh
# installs (SLUICE_TOOLS_DIR, default <repo>/.tools), with its bin/ first on PATH so that the
# builds, tests and demo use those pinned versions rather than whatever else is installed.
SLUICE_TOOLS_DIR="${SLUICE_TOOLS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools}"
export SLUICE_TOOLS_DIR
case ":$PATH:" in
  ":$SLUICE_TOOLS_DIR/bin:"*) ;;  # already first (a script sourced by another script)
  *) export PATH="$SLUICE_TOOLS_DIR/bin:$PATH" ;;
esac
