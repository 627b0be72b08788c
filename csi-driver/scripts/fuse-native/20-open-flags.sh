#!/usr/bin/env bash
# ADR 0080: open/create may answer per-open cache flags, and FLUSH of a handle that never has
# anything to flush is answered here instead of in JavaScript. fuse-native 2.2.6 keeps only `fh`
# from open/create; libfuse 2.9 turns fi->direct_io / fi->keep_cache set by open/create into
# FOPEN_DIRECT_IO / FOPEN_KEEP_CACHE. JavaScript passes a third signal argument (bit 0 direct_io,
# bit 1 keep_cache, bit 2 nothing to flush); the last is kept in a bit of fh above the 32 bits
# JavaScript ever sees (every op hands it fh as a uint32). The argument is read without the
# throwing napi-macros: one that returned early would skip uv_sem_post and hang the FUSE thread.
set -euo pipefail
src=$1
count() { grep -cF "$1" "$src" || true; }
fail() { echo "20-open-flags: fuse-native's $1 no longer looks as expected; re-check ADR 0080" >&2; exit 1; }
[ "$(count 'FUSE_METHOD(open, 2, 1, (const char *path, struct fuse_file_info *info), {')" = 1 ] || fail open
[ "$(count 'FUSE_METHOD(create, 2, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {')" = 1 ] || fail create
[ "$(count 'FUSE_METHOD_VOID(flush, 2, 0, (const char *path, struct fuse_file_info *info), {')" = 1 ] || fail flush
[ "$(count '// Methods')" = 1 ] || fail 'layout'
perl -0pi -e '
  s{// Methods\n}{// Methods\n\n#define LHB_NO_FLUSH ((uint64_t) 1 << 40)\n\nstatic void lhb_open_flags (napi_env env, napi_value value, struct fuse_file_info *info) {\n  uint32_t flags = 0;\n  if (napi_get_value_uint32(env, value, &flags) != napi_ok) flags = 0;\n  info->direct_io = (flags & 1) ? 1 : 0;\n  info->keep_cache = (flags & 2) ? 1 : 0;\n  if ((flags & 4) && info->fh != 0) info->fh |= LHB_NO_FLUSH;\n}\n};
  s{(FUSE_METHOD\((open|create), 2, )1(, .*?NAPI_ARGV_INT32\(fd, 2\)\n  if \(fd != 0\) \{\n    l->info->fh = fd;\n  \}\n)}{${1}2${3}  lhb_open_flags(env, argv[3], l->info);\n}gs;
  s{(FUSE_METHOD_VOID\(flush, 2, 0, \(const char \*path, struct fuse_file_info \*info\), \{\n)}{$1  if (info != NULL && (info->fh & LHB_NO_FLUSH)) return 0;\n};
' "$src"
[ "$(count 'lhb_open_flags(env, argv[3], l->info);')" = 2 ] || fail 'open/create signal'
[ "$(count 'FUSE_METHOD(open, 2, 2,')" = 1 ] && [ "$(count 'FUSE_METHOD(create, 2, 2,')" = 1 ] || fail 'open/create arity'
[ "$(count '(info->fh & LHB_NO_FLUSH)) return 0;')" = 1 ] || fail 'flush handler'
