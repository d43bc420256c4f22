#!/usr/bin/env bash
# Copies the CRDs of crds/ into manifests/install.yaml (replacing the CustomResourceDefinition
# documents there, in place) and into charts/sluice/crds/. Run after changing a file of crds/;
# tests/install fails until the copies match. Usage: manifests/sync-crds.sh [REPO_ROOT]
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
install="$root/manifests/install.yaml"
crds=("$root"/crds/*.yaml)

# install.yaml: the documents before the first CRD, every file of crds/, the documents after
# the last CRD. Documents are separated by lines that are exactly "---".
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
awk -v out="$out" -v crdlist="${crds[*]}" '
  function flush() {
    if (doc == "" && n == 0) return
    if (doc ~ /(^|\n)kind: CustomResourceDefinition\n/) {
      if (!done) {
        split(crdlist, files, " ")
        for (i = 1; i in files; i++) {
          if (i > 1 || wrote) printf "---\n" > out
          while ((getline line < files[i]) > 0) print line > out
          close(files[i])
          wrote = 1
        }
        done = 1
      }
    } else {
      if (wrote) printf "---\n" > out
      printf "%s", doc > out
      wrote = 1
    }
    doc = ""; n = 0
  }
  $0 == "---" { flush(); next }
  { doc = doc $0 "\n"; n++ }
  END { flush() }
' "$install"
cat "$out" > "$install"

mkdir -p "$root/charts/sluice/crds"
rm -f "$root"/charts/sluice/crds/*.yaml
cp "${crds[@]}" "$root/charts/sluice/crds/"
