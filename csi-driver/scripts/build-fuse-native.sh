#!/usr/bin/env bash
# Rebuilds fuse-native's N-API binding from its installed source with our edits applied: each
# scripts/fuse-native/NN-*.sh edits the C source in order, from the pristine copy kept beside it
# (ADR 0042). We commit no third-party source, only these edit scripts; each refuses to run when
# the source no longer looks as it expects, so an upgrade of fuse-native forces a look. The build
# needs only gcc, make, python3, npm's bundled node-gyp and the headers shipped in the Node 24
# package; libfuse's headers come with fuse-shared-library. node-gyp-build loads build/Release
# before the package's prebuilt binary. Idempotent: rebuilds only when the edits changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pkg="$root/node_modules/fuse-native"
src="$pkg/fuse-native.c"
[ -f "$src" ] || { echo "build-fuse-native: $pkg is missing; run npm ci first" >&2; exit 1; }
if [ ! -f "$src.orig" ]; then
  # A checkout built before the edits were split into scripts holds the utimens fix in place.
  sed 's/FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)/FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)/' "$src" > "$src.orig"
fi
edits=("$here"/fuse-native/[0-9][0-9]-*.sh)
want=$(cat "$src.orig" "${edits[@]}" | sha256sum | cut -d' ' -f1)
stamp="$pkg/build/lighthouse-bridge.stamp"
if [ -f "$pkg/build/Release/fuse.node" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then exit 0; fi
cp "$src.orig" "$src"
for edit in "${edits[@]}"; do bash "$edit" "$src"; done
gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || { echo "build-fuse-native: npm's bundled node-gyp not found at $gyp" >&2; exit 1; }
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$nodedir/include/node/node_api.h" ] || { echo "build-fuse-native: no Node headers under $nodedir/include" >&2; exit 1; }
echo "build-fuse-native: building fuse-native's binding with ${#edits[@]} edit(s)" >&2
log=$(mktemp)
if ! (cd "$pkg" && node "$gyp" rebuild --nodedir="$nodedir") >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; exit 1; fi
rm -f "$log"
echo "$want" > "$stamp"
