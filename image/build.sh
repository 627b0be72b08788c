#!/usr/bin/env bash
# `make image`: every image the cluster and the e2e need, each a docker-archive tarball in out-dir
# built with no Docker engine (ADR 0005): lighthouse-bridge (the project), pause (containerd's
# sandbox image), workbench (busybox and git, for the e2e's workload pods), redis (the chart's
# bundled Redis). Each image's script prints its tag, id, archive digest and sizes.
# Usage: image/build.sh [out-dir] [image...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/out}
shift || true
declare -A scripts=([lighthouse-bridge]=project.sh [pause]=pause.sh [workbench]=workbench.sh [redis]=redis.sh)
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(lighthouse-bridge pause workbench redis)
for name in "${images[@]}"; do
  [ -n "${scripts[$name]:-}" ] || { echo "image: no image named '$name' (${!scripts[*]})" >&2; exit 2; }
done
for name in "${images[@]}"; do
  start=$(date +%s)
  bash "$here/${scripts[$name]}" "$out"
  echo "time:    $(( $(date +%s) - start )) s"
  echo
done
