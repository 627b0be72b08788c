#!/usr/bin/env bash
# Builds the Go test tools (kube-apiserver, etcd, csi-sanity, ...) once into the cache.
# Each tools/*.sh script is idempotent and prints nothing when its tools are cached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for s in "$here"/tools/*.sh; do [ -e "$s" ] && bash "$s"; done
exit 0
