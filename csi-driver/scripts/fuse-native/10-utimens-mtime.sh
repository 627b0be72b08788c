#!/usr/bin/env bash
# ADR 0042: fuse-native 2.2.6 hands JavaScript the access time in both slots of utimens.
set -euo pipefail
src=$1
grep -qF 'FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)' "$src" || {
  echo "10-utimens-mtime: fuse-native's utimens no longer looks as expected; re-check ADR 0042" >&2; exit 1; }
sed -i 's/FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)/FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)/' "$src"
