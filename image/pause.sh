#!/usr/bin/env bash
# `lighthouse-bridge-pause:<version>`, the sandbox image for containerd (its `sandbox_image`): our
# own pause program (image/pause/pause.c), linked statically so the image holds nothing else, run
# as 65535. Usage: image/pause.sh out-dir
set -euo pipefail
source "$(dirname "$0")/lib.sh"
epoch=$(img_epoch image/lib.sh image/pause.sh image/pause)

fs="$work/fs"
mkdir -p "$fs"
# -s: no symbols; the build id gcc adds is a hash of the output, so the bytes stay reproducible.
gcc -static -Os -s -Wall -Wextra -Werror -o "$fs/pause" "$img_root/image/pause/pause.c"
layer_tar "$fs" "$epoch" "$work/pause.tar"
write_image pause "lighthouse-bridge-pause:$img_version" "$epoch" '{ "User": "65535:65535", "Entrypoint": ["/pause"] }' \
  "$work/pause.tar:image/pause.sh: pause (image/pause/pause.c, static)"
