# Sourced by the image scripts (ADR 0005): what every image shares — Debian packages fetched by
# exact version and unpacked, layers tarred reproducibly, and the docker-archive written (a
# manifest.json, the config JSON named by its sha256, one uncompressed tar per layer: what
# `ctr -n k8s.io images import` takes). Sourcing it takes the caller's out-dir argument as `out`
# and gives a scratch directory `work`, removed on exit.
# Modes in the layers come from the staging tree; a caller's umask must not change them.
umask 022
img_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
img_cache="${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/image"
img_version=$(node -p 'require(process.argv[1]).version' "$img_root/package.json")
out=${1:?"usage: $0 out-dir"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Never used at run time in any of the images; dropping them keeps the system layers small. The
# glibc libraries are debugging aids or old interfaces none of our binaries name (per readelf):
# libmvec alone is 1 MB.
img_prune=(usr/share/doc usr/share/man usr/share/info usr/share/locale usr/share/lintian usr/share/bug
  usr/share/gcc usr/share/gdb usr/share/bash-completion usr/share/initramfs-tools
  usr/lib/x86_64-linux-gnu/gconv usr/share/i18n etc/init.d
  lib/x86_64-linux-gnu/libmvec.so.1 lib/x86_64-linux-gnu/libBrokenLocale.so.1
  lib/x86_64-linux-gnu/libmemusage.so lib/x86_64-linux-gnu/libpcprofile.so
  lib/x86_64-linux-gnu/libc_malloc_debug.so.0 lib/x86_64-linux-gnu/libthread_db.so.1
  lib/x86_64-linux-gnu/libnsl.so.1 lib/x86_64-linux-gnu/libnss_compat.so.2
  lib/x86_64-linux-gnu/libnss_hesiod.so.2)

sha() { sha256sum "$1" | cut -d' ' -f1; }
mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }

# The epoch of the last commit that changed any of the given paths (relative to the repository):
# a layer built only from them and Debian packages keeps its mtimes, hence its digest, across
# commits that do not touch them. HEAD's time outside git history.
img_epoch() {
  local t
  t=$(git -C "$img_root" log -1 --format=%ct -- "$@" 2>/dev/null || true)
  echo "${t:-${SOURCE_DATE_EPOCH:-$(git -C "$img_root" log -1 --format=%ct)}}"
}

# A tar whose bytes depend only on the tree's content: sorted entries, GNU format, one mtime,
# owner 0:0 — except the given uid:gid:path entries (a path relative to dir, a directory
# tree), appended with that owner, because building needs no root to chown them.
layer_tar() { # dir epoch dest [uid:gid:path...]
  local dir=$1 epoch=$2 dest=$3 spec uid gid path excludes=()
  shift 3
  for spec in "$@"; do excludes+=("--exclude=./${spec#*:*:}"); done
  tar -C "$dir" --sort=name --format=gnu --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    "${excludes[@]}" -cf "$dest" .
  for spec in "$@"; do
    IFS=: read -r uid gid path <<<"$spec"
    tar -C "$dir" --sort=name --format=gnu --mtime="@$epoch" --owner="$uid" --group="$gid" \
      --numeric-owner -rf "$dest" "./$path"
  done
}

# Prints the cached .deb of each package's candidate version, downloading what is missing.
fetch_debs() { # package...
  local pkg ver file
  mkdir -p "$img_cache/debs"
  for pkg in "$@"; do
    ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
      apt-get update -qq >&2
      ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    fi
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "image: apt has no candidate for $pkg" >&2; exit 1; }
    file="$img_cache/debs/${pkg}_${ver//:/%3a}_amd64.deb"
    [ -f "$file" ] || (cd "$img_cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2)
    [ -f "$file" ] || { echo "image: apt-get download $pkg=$ver gave no $file" >&2; exit 1; }
    echo "$file"
  done
}

# Unpacks the packages into dest and drops what no image runs.
unpack_debs() { # dest package...
  local dest=$1 deb p debs
  shift
  debs=$(fetch_debs "$@")
  mkdir -p "$dest"
  for deb in $debs; do dpkg-deb -x "$deb" "$dest"; done
  for p in "${img_prune[@]}"; do rm -rf "${dest:?}/$p"; done
}

# The shared libraries an ELF file names that are not in dest (nothing for a non-ELF file).
missing_libraries() { # dest file
  local lib
  for lib in $(readelf -d "$2" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -e "$1/lib/x86_64-linux-gnu/$lib" ] || [ -e "$1/usr/lib/x86_64-linux-gnu/$lib" ] || echo "$lib"
  done
}

# Every shared library each file under dest/<path> names must be in dest: a package left out of
# a list fails the build, not the first container that runs it.
check_libraries() { # dest path...
  local dest=$1 f p libs missing=0
  shift
  while IFS= read -r f; do
    libs=$(missing_libraries "$dest" "$f")
    [ -z "$libs" ] || { echo "image: ${f#"$dest"} needs" $libs "; no listed package provides it" >&2; missing=1; }
  done < <(for p in "$@"; do find "$dest/$p" -type f; done)
  [ "$missing" = 0 ] || exit 1
}

# Writes $out/<name>.tar from layer tars (in order) and a config, and prints what build.sh shows.
# The config JSON holds the image's `config` (User, Env, Entrypoint...); rootfs and history are
# filled in here from the layers.
write_image() { # name tag epoch config-json layer.tar:description...
  local name=$1 tag=$2 epoch=$3 config=$4 img spec ids=() descs=() id archive i
  shift 4
  img="$work/$name.img"
  rm -rf "$img" && mkdir -p "$img" "$out"
  for spec in "$@"; do
    id=$(sha "${spec%%:*}")
    mv "${spec%%:*}" "$img/$id.tar"
    ids+=("$id"); descs+=("${spec#*:}")
  done
  node -e '
    const [created, config, n, ...rest] = process.argv.slice(1);
    const ids = rest.slice(0, Number(n)), descs = rest.slice(Number(n));
    process.stdout.write(JSON.stringify({
      architecture: "amd64", os: "linux", created, config: JSON.parse(config),
      rootfs: { type: "layers", diff_ids: ids.map((i) => `sha256:${i}`) },
      history: descs.map((d) => ({ created, created_by: d })),
    }));' "$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" "$config" "${#ids[@]}" "${ids[@]}" "${descs[@]}" \
    >"$img/config.json"
  id=$(sha "$img/config.json")
  mv "$img/config.json" "$img/$id.json"
  node -e '
    const [config, tag, ...layers] = process.argv.slice(1);
    process.stdout.write(JSON.stringify([{ Config: config, RepoTags: [tag], Layers: layers }]));' \
    "$id.json" "$tag" "${ids[@]/%/.tar}" >"$img/manifest.json"
  archive="$out/$name.tar"
  layer_tar "$img" "$epoch" "$archive.new" && mv "$archive.new" "$archive"
  echo "image:   $tag"
  echo "id:      sha256:$id"
  echo "archive: $archive sha256:$(sha "$archive") $(mb "$archive")"
  for i in "${!ids[@]}"; do
    echo "layer:   ${descs[$i]%% (*} sha256:${ids[$i]} $(mb "$img/${ids[$i]}.tar")"
  done
}
