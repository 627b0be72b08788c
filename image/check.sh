#!/usr/bin/env bash
# `make image-check`: judges the images as a user would (ADR 0005). Builds all four twice and
# compares their digests; unpacks each into a rootfs and runs it in a chroot (root only) with its
# own config's user, environment and entrypoint: the project's CLI (help as the operator's
# non-root user, put/cat, a FUSE mount written and read through); pause (stays up, reaps an orphan
# as PID 1 of a PID namespace, exits 0 on SIGTERM); redis (serves PING on a loopback port, writes
# its AOF in /data as 999); workbench (git init, commit, clone, status as user 1000). Then, when
# containerd is installed, imports the four archives into a private containerd and lists their
# names. Leaves nothing behind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "image-check: needs root (chroot, mount)" >&2; exit 1; }
names=(lighthouse-bridge pause workbench redis)
# `env -i` leaves no PATH to find these by, and an image may set none.
chroot=$(command -v chroot); unshare=$(command -v unshare)
work=$(mktemp -d)
pids=() # background processes to stop on the way out
pause_pid= # PID 1 of a namespace ignores SIGTERM without its handler, and unshare ignores it
cleanup() {
  local pid m
  [ -z "$pause_pid" ] || kill -KILL "$pause_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; fi
  done
  grep -q " $work/lighthouse-bridge/tmp/mnt " /proc/mounts && umount -l "$work/lighthouse-bridge/tmp/mnt"
  for m in $(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do umount -l "$m"; done
  if grep -q " $work" /proc/mounts; then echo "image-check: mounts left under $work" >&2; exit 1; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { echo "image-check: $*" >&2; exit 1; }
field() { sed -n "s/^$1: *//p" "$2" | grep -o 'sha256:[0-9a-f]*'; }
# Waits up to $2 tenths of a second for command $3... to succeed while pid $1 lives.
wait_for() {
  local pid=$1 tries=$2
  shift 2
  for _ in $(seq "$tries"); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

step "build every image twice"
start=$(date +%s)
bash "$root/image/build.sh" "$work/a" | tee "$work/a.txt"
echo "first build: $(( $(date +%s) - start )) s"
bash "$root/image/build.sh" "$work/b" >"$work/b.txt"
for f in id archive; do
  [ "$(field $f "$work/a.txt")" = "$(field $f "$work/b.txt")" ] ||
    { diff "$work/a.txt" "$work/b.txt"; fail "$f differs between two builds"; }
done
echo "the same image ids and archive digests twice: ${names[*]}"

# Unpacks image $1's layers into $work/$1 and reads its config into config_<field> variables.
unpack() {
  local name=$1 img="$work/$1.img" l config
  mkdir -p "$img" "$work/$name"
  tar -xf "$work/a/$name.tar" -C "$img"
  for l in $(node -p 'require(process.argv[1])[0].Layers.join(" ")' "$img/manifest.json"); do
    tar -xf "$img/$l" -C "$work/$name" --numeric-owner
  done
  config="$img/$(node -p 'require(process.argv[1])[0].Config' "$img/manifest.json")"
  read -r -a config_entrypoint < <(node -p 'require(process.argv[1]).config.Entrypoint?.join(" ") ?? ""' "$config")
  read -r -a config_env < <(node -p 'require(process.argv[1]).config.Env?.join(" ") ?? ""' "$config")
  config_user=$(node -p 'require(process.argv[1]).config.User ?? "0:0"' "$config")
  echo "$name: $(du -sh "$work/$name" | cut -f1) unpacked, user $config_user, entrypoint ${config_entrypoint[*]:-none}"
}
bind_dev_proc() { # rootfs
  mkdir -p "$1/dev" "$1/proc"
  mount --bind /dev "$1/dev"
  mount --bind /proc "$1/proc"
}
# The image's environment, not the caller's (a container would not inherit it).
in_image() { env -i "${config_env[@]}" "$chroot" "$@"; }

check_project() {
  local fs="$work/lighthouse-bridge" store=file:///tmp/store got mount_pid
  unpack lighthouse-bridge
  local entry=("${config_entrypoint[@]}") user=$config_user

  step "lighthouse-bridge: the entrypoint with --help, as the image's user"
  in_image --userspec="$user" "$fs" "${entry[@]}" --help | head -3
  echo "user: $(in_image --userspec="$user" "$fs" node -e 'console.log(require("os").userInfo().username)')"

  step "lighthouse-bridge: every package loads with production dependencies only"
  in_image --userspec="$user" "$fs" node --input-type=module -e '
    const entries = ["core/dist/index.js", "csi-driver/dist/index.js", "csi-driver/dist/csi/index.js", "operator/dist/index.js"];
    for (const e of entries) await import(`/app/${e}`);
    console.log(`loaded ${entries.join(", ")}`)'

  step "lighthouse-bridge: put and cat on an embedded store, as the image's user"
  echo 'hello from the image' | in_image --userspec="$user" "$fs" "${entry[@]}" put demo hello.txt --store "$store"
  got=$(in_image --userspec="$user" "$fs" "${entry[@]}" cat demo hello.txt --store "$store")
  [ "$got" = 'hello from the image' ] || fail "cat gave '$got'"
  echo "cat: $got"

  step "lighthouse-bridge: mount (root, /dev and /proc bound in), write and read through it, unmount"
  bind_dev_proc "$fs"
  # A simple command, not the function: $! must be node's own pid for SIGTERM to reach it.
  env -i "${config_env[@]}" "$chroot" "$fs" "${entry[@]}" mount demo /tmp/mnt --store "$store" >"$work/mount.out" 2>"$work/mount.log" &
  mount_pid=$!; pids+=("$mount_pid")
  wait_for "$mount_pid" 150 test -s "$work/mount.out" || { cat "$work/mount.log"; fail "mount not ready in 15 s"; }
  cat "$work/mount.out"
  in_image "$fs" node -e 'require("fs").writeFileSync("/tmp/mnt/current/fuse.txt", "written through FUSE")'
  got=$(in_image "$fs" node -e 'process.stdout.write(require("fs").readFileSync("/tmp/mnt/current/fuse.txt", "utf8"))')
  [ "$got" = 'written through FUSE' ] || fail "read back '$got'"
  echo "read back in the chroot: $got"
  # An mtime set through the mount is the one stat shows (cp -a, rsync -a rely on it).
  got=$(in_image "$fs" node -e '
    const fs = require("fs"); const f = "/tmp/mnt/current/fuse.txt";
    fs.utimesSync(f, 1000000000, 1500000000); console.log(fs.statSync(f).mtimeMs / 1000)')
  [ "$got" = 1500000000 ] || fail "utimes set mtime 1500000000, stat says $got"
  echo "utimes through the mount keeps the mtime: $got"
  kill -TERM "$mount_pid"; wait "$mount_pid" || { cat "$work/mount.log"; fail "mount exited $?"; }
  ! grep -q " $fs/tmp/mnt " /proc/mounts || fail "still mounted after SIGTERM"
  got=$(in_image "$fs" "${entry[@]}" cat demo fuse.txt --store "$store")
  [ "$got" = 'written through FUSE' ] || fail "the store holds '$got'"
  echo "unmounted; the store holds: $got"
}

# The pid of the only child of $1 (unshare's forked child: PID 1 of the new namespace).
child_of() { cat /proc/"$1"/task/*/children 2>/dev/null | tr -d ' '; }
has_child() { [ -n "$(child_of "$1")" ]; }
# Whether pid $1 has a zombie child.
has_zombie_child() {
  local p
  for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" = Z ] && return 0
  done
  return 1
}

check_pause() {
  local fs="$work/pause" unshare_pid pid rc
  unpack pause
  step "pause: PID 1 of its own PID namespace as 65535 stays up, reaps an orphan, exits 0 on SIGTERM"
  rc=0; in_image --userspec="$config_user" "$fs" "${config_entrypoint[@]}" extra || rc=$?
  [ "$rc" = 2 ] || fail "pause with an argument exited $rc, not 2"
  env -i "$unshare" --pid --fork --kill-child "$chroot" --userspec="$config_user" "$fs" "${config_entrypoint[@]}" &
  unshare_pid=$!; pids+=("$unshare_pid")
  wait_for "$unshare_pid" 50 has_child "$unshare_pid" || fail "pause did not start"
  pid=$(child_of "$unshare_pid"); pause_pid=$pid
  wait_for "$pid" 50 grep -q '^Name:.*pause' "/proc/$pid/status" || fail "pause did not exec"
  sleep 0.5
  kill -0 "$pid" || fail "pause exited on its own"
  # A process joining the namespace leaves a child there and exits: the child is re-parented to
  # PID 1, which must reap it once it ends.
  nsenter --target "$pid" --pid -- /bin/sh -c 'sleep 0.3 & exit 0'
  sleep 1
  ! has_zombie_child "$pid" || fail "an orphan stays a zombie under pause"
  echo "pause (pid $pid) reaped an orphan in its namespace"
  kill -TERM "$pid"
  rc=0; wait "$unshare_pid" || rc=$?
  [ "$rc" = 0 ] || fail "pause exited $rc on SIGTERM"
  pause_pid=
  echo "SIGTERM: exit 0"
}

check_redis() {
  local fs="$work/redis" port pid got
  unpack redis
  step "redis: redis-server as 999 on a free loopback port, PING, a write kept in its AOF under /data"
  bind_dev_proc "$fs"
  port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })')
  env -i "${config_env[@]}" "$chroot" --userspec="$config_user" "$fs" "${config_entrypoint[@]}" --bind 127.0.0.1 \
    --port "$port" --dir /data --appendonly yes --appendfsync always --save '' >"$work/redis.log" 2>&1 &
  pid=$!; pids+=("$pid")
  redis_up() { env -i "$chroot" "$fs" redis-cli -p "$port" ping >/dev/null 2>&1; }
  wait_for "$pid" 100 redis_up ||
    { cat "$work/redis.log"; fail "redis-server did not answer in 10 s"; }
  got=$(in_image "$fs" redis-cli -p "$port" ping)
  [ "$got" = PONG ] || fail "PING gave '$got'"
  in_image "$fs" redis-cli -p "$port" set image-check ok >/dev/null
  in_image "$fs" redis-cli -p "$port" shutdown >/dev/null 2>&1 || true
  wait "$pid" || { cat "$work/redis.log"; fail "redis-server exited $? on SHUTDOWN"; }
  grep -rqs image-check "$fs/data" || fail "no AOF in /data holds the write"
  echo "PING: $got; the AOF in /data ($(stat -c %u "$(find "$fs/data" -type f | head -1)")) holds the write; SHUTDOWN exit 0"
}

check_workbench() {
  local fs="$work/workbench" got
  unpack workbench
  step "workbench: git init, commit, clone of a path and status, as user 1000 with HOME from the image"
  bind_dev_proc "$fs"
  got=$(in_image --userspec=1000:1000 "$fs" sh -ec '
    cd "$HOME" && git init -q src && cd src
    echo "from the workbench" >a.txt && git add a.txt
    git -c user.name=check -c user.email=check@example.invalid commit -qm first
    cd .. && git clone -q src dst && cd dst
    git status >/dev/null && git status --porcelain && git log --format=%s && cat a.txt')
  [ "$got" = "$(printf 'first\nfrom the workbench')" ] || fail "git in the workbench gave: $got"
  echo "clone: a clean working tree, log 'first', a.txt '$(tail -1 <<<"$got")'"
}

check_containerd() {
  local dir="$work/containerd" pid name version
  step "containerd: import the four archives (ctr -n k8s.io images import) into a private instance"
  command -v containerd >/dev/null && command -v ctr >/dev/null || { echo "skipped: containerd not installed"; return; }
  mkdir -p "$dir"
  printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\n[grpc]\n  address = "%s/sock"\n' "$dir" "$dir" "$dir" >"$dir/config.toml"
  containerd --config "$dir/config.toml" >"$dir/log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_for "$pid" 100 ctr -a "$dir/sock" version >/dev/null 2>&1 || { tail "$dir/log"; fail "containerd did not start"; }
  for name in "${names[@]}"; do ctr -a "$dir/sock" -n k8s.io images import "$work/a/$name.tar" >/dev/null; done
  ctr -a "$dir/sock" -n k8s.io images ls -q | grep -v '^sha256:' | tee "$work/ctr.txt"
  version=$(node -p 'require(process.argv[1]).version' "$root/package.json")
  for name in lighthouse-bridge lighthouse-bridge-pause lighthouse-bridge-workbench lighthouse-bridge-redis; do
    grep -qx "docker.io/library/$name:$version" "$work/ctr.txt" || fail "containerd does not list docker.io/library/$name:$version"
  done
  kill -TERM "$pid"; wait "$pid" || true
}

check_project
check_pause
check_redis
check_workbench
check_containerd
echo; echo "image-check: ok"
