#!/usr/bin/env bash
# Rebuilds fuse-native's N-API binding from its installed source with one fix: version 2.2.6 hands
# the access time to JavaScript as both times of utimens, so mtimes set by cp -a, rsync -a and tar
# were lost (ADR 0042). The build needs only gcc, make, python3, npm's bundled node-gyp and the
# headers shipped in the Node 24 package; libfuse's headers come with fuse-shared-library.
# node-gyp-build loads build/Release before the package's prebuilt binary. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pkg="$root/node_modules/fuse-native"
src="$pkg/fuse-native.c"
[ -f "$src" ] || { echo "build-fuse-native: $pkg is missing; run npm ci first" >&2; exit 1; }
broken='FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)'
fixed='FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)'
if [ -f "$pkg/build/Release/fuse.node" ] && grep -qF "$fixed" "$src"; then exit 0; fi
grep -qF "$broken" "$src" || grep -qF "$fixed" "$src" || {
  echo "build-fuse-native: fuse-native's utimens no longer looks as expected; re-check ADR 0042" >&2; exit 1; }
sed -i "s/FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)/FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)/" "$src"
gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || { echo "build-fuse-native: npm's bundled node-gyp not found at $gyp" >&2; exit 1; }
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$nodedir/include/node/node_api.h" ] || { echo "build-fuse-native: no Node headers under $nodedir/include" >&2; exit 1; }
echo "build-fuse-native: building fuse-native's binding with the utimens fix" >&2
log=$(mktemp)
if ! (cd "$pkg" && node "$gyp" rebuild --nodedir="$nodedir") >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; exit 1; fi
rm -f "$log"
