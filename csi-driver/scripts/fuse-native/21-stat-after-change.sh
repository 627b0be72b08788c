#!/usr/bin/env bash
# ADR 0080: libfuse 2's high-level API follows every change that creates or alters an entry (create,
# mkdir, chmod, chown, utimens, truncate) with a getattr of the same path on the same thread, to
# fill its reply: a second round trip into JavaScript. Those changes may now answer with the entry's
# attributes (a third signal value: fuse-native's 18-number stat array); the binding keeps them for
# exactly the next operation of that thread and answers its getattr/fgetattr when libfuse asks
# for the same path (the same pointer: libfuse passes the buffer it gave the change). Any other
# operation first clears them. Read leniently, as in 20-open-flags.sh: the throwing napi-macros
# would skip the semaphore post and hang the FUSE thread. Applied after 20-open-flags.sh.
set -euo pipefail
src=$1
count() { grep -cF -- "$1" "$src" || true; }
fail() { echo "21-stat-after-change: fuse-native's $1 no longer looks as expected; re-check ADR 0080" >&2; exit 1; }
[ "$(count '  // Internal bookkeeping')" = 1 ] || fail 'thread locals'
[ "$(count '  fuse_thread_locals_t *l = get_thread_locals();\')" = 1 ] || fail 'FUSE_NATIVE_HANDLER'
[ "$(count 'static void lhb_open_flags (')" = 1 ] || fail 'layout (20-open-flags.sh first)'
[ "$(count '  lhb_open_flags(env, argv[3], l->info);')" = 2 ] || fail 'open/create signal'
for op in chmod chown utimens mkdir truncate ftruncate; do
  [ "$(count "FUSE_METHOD_VOID($op, ")" = 1 ] || fail "$op"
done
[ "$(count 'FUSE_METHOD(getattr, 1, 1, (const char *path, struct stat *stat), {')" = 1 ] || fail getattr
[ "$(count 'FUSE_METHOD(fgetattr, 2, 1, (const char *path, struct stat *stat, struct fuse_file_info *info), {')" = 1 ] || fail fgetattr
perl -0pi -e '
  s~  // Internal bookkeeping\n~  // Attributes a change answered with, for the getattr libfuse sends right after it.\n  const char *lhb_stat_path;\n  struct stat lhb_stat;\n\n  // Internal bookkeeping\n~;
  s~(  fuse_thread_locals_t \*l = get_thread_locals\(\);\\\n)~$1  const char *lhb_stat_for = l->lhb_stat_path;\\\n  l->lhb_stat_path = NULL;\\\n  (void) lhb_stat_for;\\\n~;
  s~(static void lhb_open_flags \()~static void lhb_note_stat (napi_env env, napi_value value, fuse_thread_locals_t *l) {\n  bool typed = false;\n  napi_typedarray_type type;\n  size_t length = 0;\n  void *data = NULL;\n  if (napi_is_typedarray(env, value, &typed) != napi_ok || !typed) return;\n  if (napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok) return;\n  if (type != napi_uint32_array || length < 18 || data == NULL) return;\n  populate_stat((uint32_t *) data, &l->lhb_stat);\n  l->lhb_stat_path = l->path;\n}\n\n$1~;
  s~FUSE_METHOD_VOID\((chmod|chown|utimens|mkdir|truncate|ftruncate), (\d), 0, (.*?)\n\}\)\n~FUSE_METHOD($1, $2, 1, $3\n}, {\n  if (res == 0) lhb_note_stat(env, argv[2], l);\n})\n~gs;
  s~(FUSE_METHOD\(create, 2, )2(, .*?  lhb_open_flags\(env, argv\[3\], l->info\);\n)~${1}3${2}  if (res == 0) lhb_note_stat(env, argv[4], l);\n~s;
  s~(FUSE_METHOD\((?:getattr|fgetattr), \d, 1, \(const char \*path, struct stat \*stat[^\n]*\{\n)~$1  if (lhb_stat_for != NULL && lhb_stat_for == path) {\n    *stat = l->lhb_stat;\n    return 0;\n  }\n~g;
' "$src"
[ "$(count 'if (res == 0) lhb_note_stat(env, argv[2], l);')" = 6 ] || fail 'change signals'
[ "$(count 'if (res == 0) lhb_note_stat(env, argv[4], l);')" = 1 ] || fail 'create signal'
[ "$(count 'if (lhb_stat_for != NULL && lhb_stat_for == path) {')" = 2 ] || fail 'getattr handlers'
[ "$(count '  l->lhb_stat_path = NULL;\')" = 1 ] || fail 'handler macro'
