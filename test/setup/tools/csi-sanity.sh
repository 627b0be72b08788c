#!/usr/bin/env bash
# Builds csi-sanity (CSI conformance suite) into $LHB_TOOLS/bin. Idempotent and silent when cached:
# the version is part of the marker so bumping the pin rebuilds.
set -euo pipefail
version=v5.4.0
tools=${LHB_TOOLS:-$HOME/.cache/lighthouse-bridge/tools}
bin=$tools/bin/csi-sanity
marker=$tools/bin/.csi-sanity-$version
[ -x "$bin" ] && [ -e "$marker" ] && exit 0
mkdir -p "$tools/bin"
GOBIN=$tools/bin GOFLAGS=-buildvcs=false go install "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$version" >&2
touch "$marker"
