#!/usr/bin/env bash
# Builds our own native parts (ADR 0083): the N-API addon the TypeScript FUSE server loads
# (native/build/lighthouse_bridge.node) and the descriptor keeper (native/build/lighthouse-bridge-keeper).
# Plain gcc against the headers shipped in the Node 24 package: no node-gyp, no third-party source.
# Idempotent: rebuilds only when the sources or this script changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
native=$(cd "$here/../native" && pwd)
out="$native/build"
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$nodedir/include/node/node_api.h" ] || { echo "build-native: no Node headers under $nodedir/include" >&2; exit 1; }
want=$(cat "$native/addon.c" "$native/keeper.c" "$0" | sha256sum | cut -d' ' -f1)
stamp="$out/sources.sha256"
if [ -f "$out/lighthouse_bridge.node" ] && [ -f "$out/lighthouse-bridge-keeper" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then exit 0; fi
echo "build-native: building lighthouse_bridge.node and lighthouse-bridge-keeper" >&2
mkdir -p "$out"
rm -f "$stamp"
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -I"$nodedir/include/node" "$native/addon.c" -o "$out/lighthouse_bridge.node"
gcc -O2 -Wall -Wextra -Werror "$native/keeper.c" -o "$out/lighthouse-bridge-keeper"
echo "$want" > "$stamp"
