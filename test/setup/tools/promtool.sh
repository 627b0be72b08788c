#!/usr/bin/env bash
# Builds promtool from the pinned Go module test/tools/kube/promtool into $LHB_TOOLS.
# Idempotent: silent and quick when the stamp matches the pinned module file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mod="$here/../../tools/kube/promtool"
tools=${LHB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/tools}
stamp="$tools/promtool.stamp"
want=$(sha256sum < "$mod/go.mod" | cut -d' ' -f1)
if [ -x "$tools/promtool" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
command -v go >/dev/null || { echo "promtool.sh: go is required to build promtool" >&2; exit 1; }
mkdir -p "$tools"
cd "$mod"
echo "promtool.sh: building promtool into $tools (a few minutes the first time)" >&2
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tools/promtool.new" github.com/prometheus/prometheus/cmd/promtool
mv "$tools/promtool.new" "$tools/promtool"
sha256sum < "$mod/go.mod" | cut -d' ' -f1 > "$stamp"
