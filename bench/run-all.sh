#!/usr/bin/env bash
# `make bench`: every benchmark in turn, each printing its figures beside a baseline measured in the
# same run. Copy what it prints, with this command, into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/setup/tools.sh
for b in append-embedded append-redis replay validation validate-file judge-memory workspace-write fuse close-latency bulk custody csi operator archive; do
  printf '\n=== node bench/%s.mjs (%s)\n' "$b" "$(date -u +%FT%TZ)"
  node "bench/$b.mjs"
done
