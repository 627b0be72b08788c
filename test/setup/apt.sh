#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use, only when one is missing.
set -euo pipefail
# fuse3 for fusermount3; bindfs (the benches' C baseline) brings its own libfuse2, the product needs no libfuse.
pkgs=(redis-server redis-tools fuse3 bindfs rsync git unzip procps python3 make g++ strace)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a system redis on 6379; tests start their own on free ports.
systemctl disable --now redis-server >/dev/null 2>&1 || service redis-server stop >/dev/null 2>&1 || true
