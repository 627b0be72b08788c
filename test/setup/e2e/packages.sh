#!/usr/bin/env bash
# Debian packages a real single-node cluster needs for `make e2e` (issue 9): the container runtime,
# the CNI plugins, iptables for kube-proxy and the kubelet. Installs only what is missing.
set -euo pipefail
pkgs=(containerd runc containernetworking-plugins iptables conntrack openssl iproute2 redis-server redis-tools)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's packages start their services; the e2e runs its own containerd and Redis.
for s in containerd redis-server; do
  systemctl disable --now "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
done
