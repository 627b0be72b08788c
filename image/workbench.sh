#!/usr/bin/env bash
# `lighthouse-bridge-workbench:<version>`, what the e2e's workload pods run: Debian's
# busybox-static (a shell and the usual tools, as links made here) and git for local work —
# init, commit, clone of a path, status — with exactly the libraries its programs load. Runs as
# root unless the pod says otherwise; user 1000 exists for `runAsUser: 1000`, and HOME=/tmp is
# writable for either. Usage: image/workbench.sh out-dir
set -euo pipefail
source "$(dirname "$0")/lib.sh"
epoch=$(img_epoch image/lib.sh image/workbench.sh)

# git's own libraries per readelf (pcre2, zlib, libc); not its Depends' curl, expat and perl,
# which only remote helpers over http and the perl commands use.
packages=(busybox-static git libc6 libpcre2-8-0 zlib1g)
# git's server side (daemon, http backend, login shell), scalar, shell completion, perl modules,
# contributed hooks and the web front end: a workload pod works in a local repository.
git_prune=(etc/bash_completion.d usr/share/perl5 usr/share/gitweb usr/share/git-core/contrib usr/bin/scalar
  usr/lib/git-core/scalar usr/bin/git-shell usr/lib/git-core/git-shell usr/lib/git-core/git-daemon
  usr/lib/git-core/git-http-backend)

fs="$work/fs"
unpack_debs "$fs" "${packages[@]}"
for p in "${git_prune[@]}"; do rm -rf "${fs:?}/$p"; done
# A git program that needs a library or an interpreter the image lacks (the http remote helpers,
# imap-send, the perl commands) would only fail when run: leave it out, say so. Never git itself:
# a library it lacks must fail the build (check_libraries below).
dropped=()
while IFS= read -r f; do
  [ "${f##*/}" != git ] || continue
  interp=$(head -c 128 "$f" | sed -n '1s/^#! *\([^ ]*\).*/\1/p')
  if [ -n "$(missing_libraries "$fs" "$f")" ] || { [ -n "$interp" ] && [ ! -e "$fs$interp" ] && [ "$interp" != /bin/sh ]; }; then
    rm "$f"; dropped+=("${f##*/}")
  fi
done < <(find "$fs/usr/lib/git-core" "$fs/usr/bin" -maxdepth 1 -type f)
find "$fs/usr/lib/git-core" "$fs/usr/bin" -xtype l -delete
# The package ships git twice, as two 3.7 MB files; one hard link stores it once.
cmp -s "$fs/usr/bin/git" "$fs/usr/lib/git-core/git" && ln -f "$fs/usr/lib/git-core/git" "$fs/usr/bin/git"
echo "workbench: without ${dropped[*]}" >&2
# busybox's applets as links, where no package put a program of that name.
for applet in $("$fs/bin/busybox" --list-full); do
  [ -e "$fs/$applet" ] || [ -L "$fs/$applet" ] || { mkdir -p "$fs/$(dirname "$applet")" && ln -s /bin/busybox "$fs/$applet"; }
done
check_libraries "$fs" bin usr/bin usr/lib/git-core
mkdir -p "$fs/tmp" "$fs/etc"
chmod 1777 "$fs/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n' >"$fs/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' >"$fs/etc/group"
layer_tar "$fs" "$epoch" "$work/fs.tar"
write_image workbench "lighthouse-bridge-workbench:$img_version" "$epoch" '{
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/tmp"],
    "Cmd": ["sh"]
  }' \
  "$work/fs.tar:image/workbench.sh: busybox-static and git (Debian)"
