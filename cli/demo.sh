#!/usr/bin/env bash
# `make demo`: mounts project "demo" on the embedded store at ./mnt and tours the filesystem.
# Leaves it mounted (the mount process keeps running in the background) and says how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."

LHB=("$(command -v node)" cli/dist/main.js)
MNT=./mnt
STATE=./.lighthouse-bridge
PIDFILE=$STATE/demo-mount.pid
LOG=$STATE/demo-mount.log
mkdir -p "$STATE"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# A mount left by an earlier demo: stop its server (SIGTERM unmounts), or clear a dead mount.
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "stopping the previous demo mount (pid $(cat "$PIDFILE"))"
  kill -TERM "$(cat "$PIDFILE")"
  for _ in $(seq 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
fi
# A dead mount (server and keeper gone) is cleared by `mount` itself; a live one whose server was
# killed is taken over by it (ADR 0083).

# Starts `mount demo` in the background and waits for its ready line.
start_mount() {
  "${LHB[@]}" mount demo "$MNT" >"$STATE/demo-mount.out" 2>"$LOG" &
  echo $! >"$PIDFILE"
  disown # the crash below is part of the tour, not news for the shell
  for _ in $(seq 150); do
    if [ -s "$STATE/demo-mount.out" ]; then break; fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then echo "mount failed:"; cat "$LOG"; exit 1; fi
    sleep 0.1
  done
  [ -s "$STATE/demo-mount.out" ] || { echo "mount did not become ready in 15 s:"; cat "$LOG"; exit 1; }
  cat "$STATE/demo-mount.out"
}
start_mount

step "ls $MNT"
ls "$MNT"

step "echo 'hello, bridge' > $MNT/current/hello.txt"
echo 'hello, bridge' >"$MNT/current/hello.txt"
first=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).head)' "$MNT/.bridge/status")

step "cat $MNT/.bridge/status"
cat "$MNT/.bridge/status"

step "echo 'a second line' >> $MNT/current/hello.txt   # one more event: one per close"
echo 'a second line' >>"$MNT/current/hello.txt"
cat "$MNT/current/hello.txt"

step "ls $MNT/history | tail -n 4"
ls "$MNT/history" | tail -n 4

step "cat $MNT/history/@$first/hello.txt   # the file as of the first write"
cat "$MNT/history/@$first/hello.txt"

step "head -n 3 $MNT/history/log"
head -n 3 "$MNT/history/log"

step "echo '{\"text\":\"greeting looks fine\",\"line\":1}' > $MNT/shadows/hello.txt.json"
echo '{"text":"greeting looks fine","line":1}' >"$MNT/shadows/hello.txt.json"
cat "$MNT/shadows/hello.txt.json"

step "timeout 3 cat $MNT/streams/events   # while another writer adds a file"
( sleep 1; echo 'written while you watched' >"$MNT/current/live.txt" ) &
writer=$!
timeout 3 cat "$MNT/streams/events" || true
wait "$writer"

ask() { # one request, one answer, on one descriptor of the control file
  exec 3<>"$MNT/.bridge/validate"
  printf '%s\n' "$1" >&3
  head -n 1 <&3
  exec 3>&-
}
step "ask $MNT/.bridge/validate: may agent a1 run 'rm -rf /'?"
ask '{"agent":"a1","tool":"Bash","input":{"command":"rm -rf /"}}'
step "ask $MNT/.bridge/validate: may agent a1 read hello.txt?"
ask "{\"agent\":\"a1\",\"tool\":\"Read\",\"input\":{\"file_path\":\"$(pwd)/mnt/current/hello.txt\"}}"

step "exec 4<$MNT/current/hello.txt; kill -9 \$(cat $PIDFILE); ${LHB[*]} mount demo $MNT   # crash, same command again"
exec 4<"$MNT/current/hello.txt"
kill -9 "$(cat "$PIDFILE")"
start_mount
step "cat <&4   # the descriptor opened before the crash reads on; nothing using the mount saw it end"
cat <&4
exec 4<&-

cat <<MSG

The project is still mounted at $MNT (server pid $(cat "$PIDFILE"), JSON logs in $LOG).
Explore it, then unmount with:   kill -TERM \$(cat $PIDFILE)
The events live in $STATE/; mount it again with: ${LHB[*]} mount demo $MNT
MSG
