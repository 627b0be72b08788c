#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for `make e2e` (issue 9; ADR 0086):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubelet, Debian's
# containerd + runc, and a CNI bridge of its own. Everything lives under $LHB_E2E_DIR; `down`
# stops it and puts the host back as `up` found it (sysctls, iptables, mounts, links, cgroups).
#   cluster.sh up      start (idempotent failures: run `down` first)
#   cluster.sh down    stop and restore the host; safe to run twice or after a failed `up`
#   cluster.sh env     print the variables a script needs (KUBECONFIG, CONTAINERD_ADDRESS, ...)
#   cluster.sh fuse-mounts DIR/   the FUSE mount points under DIR/
# The only addresses used are loopback and this cluster's own bridge 10.88.0.0/24, which exists
# only on this machine; pods reach the apiserver through the `kubernetes` Service (kube-proxy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tools=${LHB_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/tools}
bin="$tools/e2e"
E2E=${LHB_E2E_DIR:-/var/tmp/lhb-e2e}
BRIDGE=lhb0
GATEWAY=10.88.0.1
POD_CIDR=10.88.0.0/24
SERVICE_CIDR=10.96.0.0/24
KUBERNETES_SVC=10.96.0.1
API_PORT=6443
NODE=localhost
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet)

log() { printf '%s cluster: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

env_vars() {
  cat <<EOF
export LHB_E2E_DIR=$E2E
export KUBECONFIG=$E2E/pki/admin.kubeconfig
export CONTAINERD_ADDRESS=$E2E/containerd/containerd.sock
export LHB_E2E_KUBELET_DIR=$E2E/kubelet
export LHB_E2E_GATEWAY=$GATEWAY
EOF
}

# ---- PKI: one CA; a client certificate per component, each with its own identity --------------
cert() { # name subject [san] [usage]
  local name=$1 subj=$2 san=${3:-} usage=${4:-clientAuth} p="$E2E/pki"
  { [ -n "$san" ] && echo "subjectAltName=$san"; echo "extendedKeyUsage=$usage"; } >"$p/$name.ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$p/$name.key" -out "$p/$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$p/$name.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -out "$p/$name.crt" -days 2 -extfile "$p/$name.ext" 2>/dev/null
}

kubeconfig() { # name: a kubeconfig using the certificate pair of that name
  local p="$E2E/pki"
  cat >"$p/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: { server: "https://$GATEWAY:$API_PORT", certificate-authority: "$p/ca.crt" }
users:
- name: $1
  user: { client-certificate: "$p/$1.crt", client-key: "$p/$1.key" }
contexts:
- name: e2e
  context: { cluster: e2e, user: $1 }
current-context: e2e
EOF
}

make_pki() {
  local p="$E2E/pki"
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$p/ca.key" -out "$p/ca.crt" -days 2 -subj /CN=lhb-e2e-ca 2>/dev/null
  cert apiserver /CN=kube-apiserver \
    "IP:$GATEWAY,IP:$KUBERNETES_SVC,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" serverAuth
  cert kubelet-serving "/CN=system:node:$NODE/O=system:nodes" "DNS:$NODE,IP:127.0.0.1" serverAuth
  cert admin /CN=e2e-admin/O=system:masters
  # The apiserver's identity towards the kubelet (logs, exec), authorized by the kubelet's webhook.
  cert apiserver-kubelet-client /CN=kube-apiserver-kubelet-client/O=system:masters
  cert kubelet "/CN=system:node:$NODE/O=system:nodes"
  cert controller-manager /CN=system:kube-controller-manager
  cert scheduler /CN=system:kube-scheduler
  cert kube-proxy /CN=system:kube-proxy
  for k in admin kubelet controller-manager scheduler kube-proxy; do kubeconfig "$k"; done
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
}

# ---- processes -------------------------------------------------------------------------------
start() { # name binary args...: runs in its own session, log in logs/NAME.log, pid in pids/NAME
  local name=$1; shift
  setsid "$@" >"$E2E/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$E2E/pids/$name"
}

wait_for() { # what seconds command...
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what not ready after ${seconds}s (logs in $E2E/logs)"
    sleep 0.5
  done
}

kc() { "$tools/kubectl" --kubeconfig "$E2E/pki/admin.kubeconfig" "$@"; }

save_host() {
  mkdir -p "$E2E/host"
  for s in "${SYSCTLS[@]}"; do printf '%s=%s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo)"; done >"$E2E/host/sysctls"
  iptables-save >"$E2E/host/iptables" 2>/dev/null || true
  ip6tables-save >"$E2E/host/ip6tables" 2>/dev/null || true
  ip netns list 2>/dev/null | awk '{print $1}' | sort >"$E2E/host/netns"
}

network() {
  ip link add "$BRIDGE" type bridge
  ip addr add "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  sysctl -qw net.ipv4.ip_forward=1
  mkdir -p "$E2E/cni/net.d" "$E2E/cni/ipam"
  cat >"$E2E/cni/net.d/10-lhb-e2e.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "lhb-e2e",
  "plugins": [
    { "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$E2E/cni/ipam",
                "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$GATEWAY" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

containerd_up() {
  local c="$E2E/containerd" pause
  pause=$(cat "$E2E/images/pause")
  mkdir -p "$c"
  cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
[grpc]
  address = "$c/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause"
  # root here lacks CAP_SYS_RESOURCE: without this every sandbox fails to start.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$E2E/cni/net.d"
EOF
  start containerd containerd --config "$c/config.toml"
  wait_for containerd 30 ctr --address "$c/containerd.sock" version
  local tar
  for tar in "$E2E"/images/*.tar; do
    ctr --address "$c/containerd.sock" -n k8s.io images import --no-unpack=false "$tar" >/dev/null
  done
}

control_plane() {
  local p="$E2E/pki" etcd_port=2379 peer_port=2380
  start etcd "$tools/etcd" --name e2e --data-dir "$E2E/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "e2e=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level error
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$GATEWAY" --advertise-address "$GATEWAY" --secure-port "$API_PORT" \
    --cert-dir "$E2E/apiserver-certs" \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --client-ca-file "$p/ca.crt" \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" --kubelet-client-key "$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$p/ca.crt" \
    --kubelet-preferred-address-types Hostname \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --allow-privileged=true --profiling=false --v 0
  wait_for kube-apiserver 120 kc get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$p/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$p/controller-manager.kubeconfig" --authorization-kubeconfig "$p/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 \
    --root-ca-file "$p/ca.crt" --service-account-private-key-file "$p/sa.key" --use-service-account-credentials \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$POD_CIDR" \
    --flex-volume-plugin-dir "$E2E/flexvolume" --leader-elect=false --profiling=false
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$p/scheduler.kubeconfig" \
    --authentication-kubeconfig "$p/scheduler.kubeconfig" --authorization-kubeconfig "$p/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false
  start kube-proxy "$bin/kube-proxy" --kubeconfig "$p/kube-proxy.kubeconfig" \
    --hostname-override "$NODE" --cluster-cidr "$POD_CIDR" --proxy-mode iptables \
    --bind-address 127.0.0.1 --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 \
    --conntrack-max-per-core 0 --profiling=false
}

kubelet_up() {
  local p="$E2E/pki" k="$E2E/kubelet"
  mkdir -p "$k"
  # CSI mounts made in the node plugin's container propagate to the kubelet (Bidirectional) only
  # from a shared mount; this machine's root mount is private.
  mount --bind "$k" "$k" && mount --make-rshared "$k"
  cat >"$E2E/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: "$p/ca.crt" }
authorization: { mode: Webhook }
tlsCertFile: "$p/kubelet-serving.crt"
tlsPrivateKeyFile: "$p/kubelet-serving.key"
containerRuntimeEndpoint: "unix://$E2E/containerd/containerd.sock"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
maxPods: 40
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%" }
volumePluginDir: "$E2E/flexvolume"
EOF
  start kubelet "$bin/kubelet" --config "$E2E/kubelet-config.yaml" --kubeconfig "$p/kubelet.kubeconfig" \
    --root-dir "$k" --cert-dir "$E2E/kubelet-certs" --hostname-override "$NODE" --v 1
  wait_for "node $NODE Ready" 120 node_ready
}

node_ready() {
  [ "$(kc get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ] &&
    ! kc get node "$NODE" -o jsonpath='{.spec.taints}' | grep -q not-ready
}

up() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  [ ! -e "$E2E/pids" ] || die "$E2E exists: run '$0 down' first"
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    [ -x "$bin/$b" ] || die "$bin/$b missing: run bash test/setup/e2e/kube-node.sh"
  done
  [ -x "$tools/etcd" ] && [ -x "$tools/kubectl" ] || die "etcd or kubectl missing in $tools: run make tools"
  [ -d "$E2E/images" ] || die "no images in $E2E/images: the e2e runner stages them"
  mkdir -p "$E2E/logs" "$E2E/pids"
  save_host
  local t=$SECONDS
  make_pki
  network
  containerd_up
  control_plane
  kubelet_up
  log "cluster up in $((SECONDS - t)) s: $(kc get node "$NODE" -o jsonpath='{.status.nodeInfo.kubeletVersion}') on $NODE"
}

# ---- teardown --------------------------------------------------------------------------------
stop_pid() { # name: SIGTERM, then SIGKILL after 10 s
  local f="$E2E/pids/$1" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

kill_pods() {
  # Every container process lives in a cgroup under kubepods; shims under our containerd's state.
  local hier
  pod_procs | xargs -r kill -KILL 2>/dev/null || true
  pgrep -f "containerd-shim.*$E2E/containerd" | xargs -r kill -KILL 2>/dev/null || true
  sleep 1
  for hier in /sys/fs/cgroup/ /sys/fs/cgroup/*/; do
    [ -d "$hier/kubepods" ] || continue
    find "$hier/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

pod_procs() { # every process in a pod's cgroup: cgroup v1 hierarchies and the v2 root
  local hier
  for hier in /sys/fs/cgroup/ /sys/fs/cgroup/*/; do
    [ -d "$hier/kubepods" ] || continue
    find "$hier/kubepods" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
}

# Mount points of FUSE filesystems under $1; the type is the field after mountinfo's " - ".
fuse_mounts_under() {
  awk -v d="$1" '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) ~ /^fuse/ && index($5, d) == 1) print $5 }' /proc/self/mountinfo
}

unmount_under() { # every mount under $1, deepest first
  local m
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

restore_iptables() { # iptables|ip6tables: the tables as saved; tables that did not exist emptied
  local cmd=$1 saved="$E2E/host/$1" t
  [ -f "$saved" ] || return 0
  for t in filter nat mangle raw security; do
    grep -qx "\*$t" "$saved" && continue
    "$cmd" -t "$t" -F 2>/dev/null && "$cmd" -t "$t" -X 2>/dev/null || true
  done
  [ -s "$saved" ] && { "$cmd-restore" <"$saved" || log "$cmd could not be restored"; }
  return 0
}

down() {
  [ -d "$E2E" ] || return 0
  for c in kubelet kube-proxy kube-scheduler kube-controller-manager; do stop_pid "$c"; done
  kill_pods
  stop_pid containerd
  stop_pid kube-apiserver
  stop_pid etcd
  # FUSE mounts of the node plugin first: their server is gone, a lazy unmount detaches them.
  fuse_mounts_under "$E2E/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  unmount_under "$E2E"
  unmount_under /run/containerd/io.containerd.grpc.v1.cri 2>/dev/null || true
  if [ -f "$E2E/host/netns" ]; then
    comm -13 "$E2E/host/netns" <(ip netns list 2>/dev/null | awk '{print $1}' | sort) | xargs -r -n1 ip netns delete 2>/dev/null || true
  fi
  ip link del "$BRIDGE" 2>/dev/null || true
  restore_iptables iptables
  restore_iptables ip6tables
  if [ -f "$E2E/host/sysctls" ]; then
    while IFS='=' read -r k v; do [ -n "$v" ] && sysctl -qw "$k=$v" 2>/dev/null || true; done <"$E2E/host/sysctls"
  fi
  local keep=${LHB_E2E_KEEP_LOGS:-}
  if [ -n "$keep" ]; then mkdir -p "$keep" && cp -a "$E2E/logs/." "$keep/" 2>/dev/null || true; fi
  local saved_sysctls
  saved_sysctls=$(mktemp)
  cp "$E2E/host/sysctls" "$saved_sysctls" 2>/dev/null || rm -f "$saved_sysctls"
  rm -rf "$E2E"
  # What `up` changed, checked rather than assumed put back.
  local left=()
  iptables-save 2>/dev/null | grep -q '^:KUBE-' && left+=("KUBE iptables chains")
  ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("bridge $BRIDGE")
  grep -qF " $E2E" /proc/self/mountinfo && left+=("mounts under $E2E")
  pgrep -f "[c]ontainerd --config $E2E/" >/dev/null && left+=("containerd")
  [ -z "$(pod_procs)" ] || left+=("pod processes $(pod_procs | paste -sd, -)")
  if [ -f "$saved_sysctls" ]; then
    while IFS='=' read -r k v; do
      [ -z "$v" ] || [ "$(sysctl -n "$k" 2>/dev/null)" = "$v" ] || left+=("sysctl $k")
    done <"$saved_sysctls"
  fi
  rm -f "$saved_sysctls"
  [ ${#left[@]} -eq 0 ] || die "host not restored: ${left[*]}"
  log "cluster down; host restored"
}

case "${1:-}" in
  fuse-mounts) fuse_mounts_under "$2" ;;
  up) up ;;
  down) down ;;
  env) env_vars ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
