#!/usr/bin/env bash
# `lighthouse-bridge-redis:<version>`, the chart's bundled Redis: redis-server and redis-cli from
# Debian's redis-tools with the libraries they load, run as 999 "redis" in /data (owned by it,
# where a PVC is mounted). Arguments are redis-server's. Usage: image/redis.sh out-dir
set -euo pipefail
source "$(dirname "$0")/lib.sh"
epoch=$(img_epoch image/lib.sh image/redis.sh)

# redis-tools holds the programs (redis-server's package only adds its service files); the rest
# is what readelf says they load, transitively (libsystemd brings libcap, libgcrypt, lzma, zstd,
# lz4; libssl3 also holds libcrypto).
packages=(redis-tools libc6 libatomic1 liblzf1 libjemalloc2 libsystemd0 libssl3 libstdc++6 libgcc-s1
  libcap2 libgcrypt20 libgpg-error0 liblzma5 libzstd1 liblz4-1)
# The benchmark and the AOF checker are not the server; redis-check-rdb is (it picks its role
# from argv[0]), so it stays under the server's name.
fs="$work/fs"
unpack_debs "$fs" "${packages[@]}"
mv "$fs/usr/bin/redis-check-rdb" "$fs/usr/bin/redis-server"
rm -f "$fs/usr/bin/redis-benchmark" "$fs/usr/bin/redis-check-aof"
rm -rf "$fs/usr/lib/x86_64-linux-gnu/engines-3" "$fs/usr/lib/x86_64-linux-gnu/ossl-modules"
check_libraries "$fs" usr/bin
mkdir -p "$fs/tmp" "$fs/etc" "$fs/data"
chmod 1777 "$fs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nredis:x:999:999:redis:/data:/sbin/nologin\n' >"$fs/etc/passwd"
printf 'root:x:0:\nredis:x:999:\n' >"$fs/etc/group"
layer_tar "$fs" "$epoch" "$work/fs.tar" 999:999:data
write_image redis "lighthouse-bridge-redis:$img_version" "$epoch" '{
    "User": "999:999", "WorkingDir": "/data",
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"],
    "Entrypoint": ["redis-server"], "ExposedPorts": { "6379/tcp": {} }, "Volumes": { "/data": {} }
  }' \
  "$work/fs.tar:image/redis.sh: redis-server and redis-cli (Debian)"
