#!/usr/bin/env bash
# Builds the binaries of a real single-node cluster for `make e2e` (issue 9): kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet and kube-proxy (pods reach the apiserver through
# the `kubernetes` Service's ClusterIP, as in-cluster clients do) of the release pinned in test/tools/kube, in ONE
# `go build` (shared packages compile once; cold, this is tens of minutes on 2 cores), with the
# version stamped (else nodes report v0.0.0-master). The module is copied into the cache first, so
# resolving the kubelet's extra requirements never edits the pinned go.mod. Not part of `make test`.
# Idempotent: silent when the stamp matches the pinned module.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mod="$here/../../tools/kube"
tools=${LHB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/tools}
out="$tools/e2e"
version=$(sed -n 's/^\s*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$mod/go.mod" | head -n1)
[ -n "$version" ] || { echo "kube-node.sh: no k8s.io/kubernetes version in $mod/go.mod" >&2; exit 1; }
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
want=$( (cat "$mod/go.mod"; echo "$version node ${bins[*]}") | sha256sum | cut -d' ' -f1)
ready=1
for b in "${bins[@]}"; do [ -x "$out/$b" ] || ready=0; done
[ "$ready" = 1 ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$want" ] && exit 0
command -v go >/dev/null || { echo "kube-node.sh: go is required" >&2; exit 1; }
work="$out/module"
rm -rf "$work" && mkdir -p "$work"
cp "$mod/go.mod" "$mod/go.sum" "$work/"
cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
cd "$work"
export GOFLAGS=-mod=mod CGO_ENABLED=0
echo "kube-node.sh: building ${bins[*]} $version into $out (tens of minutes the first time)" >&2
go build -trimpath -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)" \
  -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
echo "$want" > "$out/stamp"
