#!/usr/bin/env bash
# `make e2e`: the project in a real single-node cluster (issue 9; ADR 0086). Builds what it needs
# (cached under $HOME/.cache), brings the cluster up (cluster.sh), installs the chart with helm
# from this checkout, runs the user scenario (scenario.sh) printing each step and its time, and
# always tears down and restores the host, also on failure or Ctrl-C.
# LHB_E2E_KEEP_LOGS=DIR keeps the components' logs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export LHB_TOOLS=${LHB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/tools}
export LHB_E2E_DIR=${LHB_E2E_DIR:-/var/tmp/lhb-e2e}
[ "$(id -u)" = 0 ] || { echo "e2e: must run as root (it runs a kubelet)" >&2; exit 1; }

began=$SECONDS
say() { printf '%s e2e: %s\n' "$(date +%T)" "$*"; }

say "tools: Go-built cluster binaries (cached), helm and kubectl"
bash "$root/test/setup/tools.sh"
bash "$root/test/setup/e2e/kube-node.sh"
bash "$root/test/setup/e2e/packages.sh"

bash "$here/cluster.sh" down # a run killed before its teardown left it behind
teardown() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${REDIS_PID:-}" ] && kill "$REDIS_PID" 2>/dev/null
  bash "$here/cluster.sh" down || rc=1
  say "finished in $((SECONDS - began)) s: $([ "$rc" = 0 ] && echo PASS || echo "FAIL ($rc)")"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

say "images: make image (reproducible docker archives; Debian packages cached, about a minute)"
mkdir -p "$LHB_E2E_DIR/images"
bash "$root/image/build.sh" "$LHB_E2E_DIR/images" | sed 's/^/  /'
# A docker archive's manifest names its tag; containerd imports it as docker.io/library/<tag>.
ref_of() { tar -xOf "$1" ./manifest.json | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log("docker.io/library/"+JSON.parse(s)[0].RepoTags[0]))'; }
for tar in "$LHB_E2E_DIR"/images/*.tar; do
  name=$(basename "$tar" .tar)
  ref_of "$tar" >"$LHB_E2E_DIR/images/$name"
done

say "cluster: etcd, kube-apiserver, controller-manager, scheduler, kube-proxy, containerd, kubelet"
bash "$here/cluster.sh" up
eval "$(bash "$here/cluster.sh" env)"
export PATH="$LHB_TOOLS:$PATH"

# The e2e's Redis is external to the chart (a Secret holding the URL), on this cluster's own
# bridge address so pods reach it; the bundled-Redis path is checked by the chart tests.
REDIS_PORT=6390
REDIS_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
mkdir -p "$LHB_E2E_DIR/redis"
redis-server --bind "$LHB_E2E_GATEWAY" 127.0.0.1 --port "$REDIS_PORT" --dir "$LHB_E2E_DIR/redis" \
  --requirepass "$REDIS_PASSWORD" --appendonly yes --appendfsync always --save '' \
  --logfile "$LHB_E2E_DIR/logs/redis.log" --daemonize no &
REDIS_PID=$!
export REDISCLI_AUTH=$REDIS_PASSWORD
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export REDIS_PORT REDIS_URL="redis://:$REDIS_PASSWORD@$LHB_E2E_GATEWAY:$REDIS_PORT"

bash "$here/scenario.sh"
