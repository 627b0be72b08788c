#!/usr/bin/env bash
# The user scenario of `make e2e` (issue 9), against the cluster run.sh brought up: helm install of
# this checkout's chart, then what a team does with it, each step printed with its time. Every
# check reads what a user would see (kubectl, pod output, the node's mount table, Redis).
# Needs from run.sh: KUBECONFIG, LHB_E2E_DIR, LHB_E2E_KUBELET_DIR, REDIS_URL, REDIS_PORT, REDISCLI_AUTH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
images="$LHB_E2E_DIR/images"
IMAGE=$(cat "$images/lighthouse-bridge")
WORKBENCH=$(cat "$images/workbench")
RELEASE=lhb
RELEASE_NS=lighthouse-bridge
NS=agents
PROJECT=demo
DRIVER=bridge.lighthouse.dev
STATE_DIR="$LHB_E2E_DIR/node-state"
PLUGIN_DIR="$LHB_E2E_KUBELET_DIR/plugins/$DRIVER"

step_no=0
step_began=0
step() { step_no=$((step_no + 1)); step_began=$(date +%s%N); printf '\n== step %s: %s\n' "$step_no" "$*"; }
ok() { printf '   ok (%s ms) %s\n' "$(( ($(date +%s%N) - step_began) / 1000000 ))" "$*"; }
note() { printf '   %s\n' "$*"; }
fail() { printf '   FAILED: %s\n' "$*" >&2; diagnose; exit 1; }
diagnose() {
  kubectl get pods -A -o wide 2>&1 | sed 's/^/   | /' >&2 || true
  kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -20 | sed 's/^/   | /' >&2 || true
  kubectl -n "$RELEASE_NS" logs -l app.kubernetes.io/component=csi-node --tail=30 --all-containers 2>&1 | sed 's/^/   | plugin: /' >&2 || true
  kubectl -n "$RELEASE_NS" logs -l app.kubernetes.io/component=operator --tail=30 2>&1 | sed 's/^/   | operator: /' >&2 || true
  # A plugin pod replaced by the upgrade step takes its log with it: that step keeps a copy.
  tail -n 30 "$LHB_E2E_DIR/old-plugin.log" 2>/dev/null | sed 's/^/   | old plugin: /' >&2 || true
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

wait_for() { # seconds description why command...: on timeout, the output of the shell code `why` joins the failure
  local seconds=$1 what=$2 why=$3; shift 3
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what (not within ${seconds}s)$( [ "$why" = : ] || printf ': %s' "$(eval "$why" 2>&1)")"
    sleep 0.2
  done
}
wait_until() { local seconds=$1 what=$2; shift 2; wait_for "$seconds" "$what" : "$@"; } # seconds description command...
pod_running() { [ "$(kubectl -n "$NS" get pod "$1" -o jsonpath='{.status.phase}')" = Running ]; }
x() { local pod=$1; shift; kubectl -n "$NS" exec "$pod" -- sh -c "$*"; }

pod() { # name serviceaccount readOnly: an agent pod with the project as an inline CSI volume
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: { name: $1, namespace: $NS }
spec:
  serviceAccountName: $2
  terminationGracePeriodSeconds: 1
  containers:
    - name: agent
      image: $WORKBENCH
      imagePullPolicy: Never
      command: [sleep, "86400"]
      env: [{ name: HOME, value: /tmp }]
      volumeMounts: [{ name: workspace, mountPath: /workspace }]
  volumes:
    - name: workspace
      csi:
        driver: $DRIVER
        readOnly: $3
        volumeAttributes: { project: $PROJECT, workspacePath: /workspace }
EOF
}

fuse_mounts() { bash "$here/cluster.sh" fuse-mounts "$LHB_E2E_KUBELET_DIR/"; }
# Our processes are those in this cluster's pod cgroups, never another test's plugin on the machine.
pod_process() { # pattern: pids in a kubepods cgroup whose command line matches
  local pid
  for pid in $(pgrep -f "$1"); do grep -qs kubepods "/proc/$pid/cgroup" && echo "$pid"; done
  return 0
}
container_pid() { # pod container: the host pid of that container's main process, from containerd
  local id
  id=$(kubectl -n "$RELEASE_NS" get pod "$1" -o jsonpath="{.status.containerStatuses[?(@.name==\"$2\")].containerID}")
  ctr --address "$CONTAINERD_ADDRESS" -n k8s.io tasks ls | awk -v id="${id#containerd://}" '$1 == id {print $2}'
}

# ---------------------------------------------------------------------------------------------
step "helm install of charts/lighthouse-bridge (operator pod, node plugin DaemonSet, external Redis)"
kubectl create namespace "$RELEASE_NS" >/dev/null
kubectl -n "$RELEASE_NS" create secret generic lhb-redis --from-literal=url="$REDIS_URL" >/dev/null
helm install "$RELEASE" "$root/charts/lighthouse-bridge" --namespace "$RELEASE_NS" \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set redis.existingSecret=lhb-redis \
  --set csi.kubeletDir="$LHB_E2E_KUBELET_DIR" --set csi.stateDir="$STATE_DIR" \
  --set operator.replicas=1 \
  --wait --timeout 5m >/dev/null || fail "helm install"
ok "$(kubectl -n "$RELEASE_NS" get pods --no-headers | awk '{print $1" "$3}' | paste -sd, -)"
wait_until 30 "the kubelet registered the driver" sh -c "kubectl get csinode localhost -o jsonpath='{.spec.drivers[*].name}' | grep -qw $DRIVER"
note "CSINode lists $DRIVER (self-registration through plugins_registry)"

# ---------------------------------------------------------------------------------------------
step "the operator, as a pod with its own service-account token, takes a BridgeProject to Ready"
kubectl create namespace "$NS" >/dev/null
for sa in writer reader stranger; do kubectl -n "$NS" create serviceaccount "$sa" >/dev/null; done
acl_before=$(redis-cli -p "$REDIS_PORT" ACL USERS | sort | paste -sd' ' -)
kubectl apply -f "$root/docs/examples/demo-project.yaml" >/dev/null
wait_until 60 "BridgeProject $PROJECT Ready" sh -c \
  "[ \"\$(kubectl -n $NS get bridgeproject $PROJECT -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
ok "Ready; Redis ACL users now: $(redis-cli -p "$REDIS_PORT" ACL USERS | paste -sd' ' -)"

# ---------------------------------------------------------------------------------------------
step "pod A (writer) writes; pod B (reader, read-only volume) sees it, reads history, cannot write"
t=$(date +%s%N)
# The README's example pods, as written there; they must name the image this run built.
grep -q "image: $WORKBENCH\$" "$root/docs/examples/demo-pods.yaml" || fail "docs/examples/demo-pods.yaml does not use $WORKBENCH"
kubectl apply -f "$root/docs/examples/demo-pods.yaml" >/dev/null
wait_until 60 "pod a Running" pod_running a
wait_until 60 "pod b Running" pod_running b
ok "pods A and B Running in $(ms_since "$t") ms"
# Both clocks are this node's uptime: B prints when it first saw the file A wrote, A writes when.
x b 'for i in $(seq 1 500); do if [ -s /workspace/current/hello.txt ]; then cut -d" " -f1 /proc/uptime; exit 0; fi; usleep 10000; done; exit 1' >"$LHB_E2E_DIR/seen" &
watcher=$!
sleep 1
x a 'cut -d" " -f1 /proc/uptime > /workspace/current/hello.txt && mkdir -p /workspace/current/notes && echo "from A" > /workspace/current/notes/a.md'
wait "$watcher" || fail "pod B never saw hello.txt"
written=$(x b 'cat /workspace/current/hello.txt')
seen=$(cat "$LHB_E2E_DIR/seen")
lag_ms=$(awk -v a="$written" -v b="$seen" 'BEGIN { printf "%d", (b - a) * 1000 }')
[ "$lag_ms" -le 1000 ] || fail "B saw A's write after ${lag_ms} ms (budget 1000 ms)"
note "B saw A's file ${lag_ms} ms after A wrote it (uptime clock, 10 ms polling)"
[ "$(x b 'cat /workspace/current/notes/a.md')" = "from A" ] || fail "B reads notes/a.md wrong"
latest=$(x b 'ls /workspace/history' | grep '^@' | sort -t@ -k2 -n | tail -n1)
[ "$(x b "cat /workspace/history/$latest/notes/a.md")" = "from A" ] || fail "history/$latest/notes/a.md"
note "B reads history/$latest/notes/a.md"
if err=$(x b 'echo nope > /workspace/current/b.txt' 2>&1); then fail "B could write"; fi
echo "$err" | grep -q 'Read-only file system' || fail "B's write failed with '$err', not EROFS"
note "B's write: $(echo "$err" | grep -o 'Read-only file system' | head -n1)"
pod c stranger false
wait_until 60 "a FailedMount event for pod c" sh -c \
  "kubectl -n $NS get events --field-selector involvedObject.name=c,reason=FailedMount -o jsonpath='{.items[*].message}' | grep -q ."
reason=$(kubectl -n "$NS" get events --field-selector involvedObject.name=c,reason=FailedMount -o jsonpath='{.items[0].message}')
echo "$reason" | grep -q 'stranger' || fail "FailedMount does not name the service account: $reason"
ok "pod C (stranger): FailedMount: ${reason##*desc = }"

# ---------------------------------------------------------------------------------------------
step "git clone and git status inside pod A's current/"
out=$(x a 'set -e
  mkdir -p /tmp/src && cd /tmp/src && git init -q
  for d in src docs test; do mkdir -p $d; for i in $(seq 1 10); do echo "line $i of $d" > $d/f$i.txt; done; done
  git add -A && git -c user.email=e2e@example.invalid -c user.name=e2e commit -qm "initial"
  echo more >> docs/f1.txt && git -c user.email=e2e@example.invalid -c user.name=e2e commit -qam "second"
  cd /workspace/current && git clone -q /tmp/src repo && cd repo
  echo "status:$(git status --porcelain | wc -l) commits:$(git rev-list --count HEAD) files:$(git ls-files | wc -l)"
  echo change >> src/f2.txt && echo "after edit:$(git status --porcelain)"') || fail "git in pod A: $out"
echo "$out" | grep -q 'status:0 commits:2 files:30' || fail "git in pod A: $out"
echo "$out" | grep -q 'after edit: M src/f2.txt' || fail "git status after an edit: $out"
ok "$(echo "$out" | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------
step "kill -9 of the node plugin's node process: the keeper restarts it and it takes the live mounts over; pods A and B carry on"
# In each pod a loop every ~20 ms: A appends the next counter line to a file in the volume and
# reads it back; B (read-only volume) reads A's note. Each logs its errors and the longest gap
# between two successful iterations (uptime clock, 10 ms resolution).
loop_script='mode=$1 f=$2; i=0; max=0; max_at=0; : > /tmp/loop.err; : > /tmp/loop.gaps
read last _ < /proc/uptime
while [ ! -e /tmp/loop.stop ]; do
  got=
  if [ "$mode" = rw ]; then
    echo "$i" >> "$f" 2>>/tmp/loop.err && got=$(tail -n 1 "$f" 2>>/tmp/loop.err) && [ "$got" = "$i" ]
  else
    got=$(cat "$f" 2>>/tmp/loop.err) && [ "$got" = "from A" ]
  fi
  if [ $? = 0 ]; then
    read now _ < /proc/uptime
    gap=$(( (${now%.*}${now#*.} - ${last%.*}${last#*.}) * 10 ))
    [ "$gap" -gt "$max" ] && max=$gap && max_at=$now
    [ "$gap" -gt 40 ] && echo "$gap $now" >> /tmp/loop.gaps
    last=$now; i=$((i + 1))
  else
    echo "iteration $i failed, read back: $got" >> /tmp/loop.err
  fi
  usleep 20000
done
echo "$i $max $max_at" > /tmp/loop.done'
start_loop() { # pod mode file: the loop runs detached inside the pod, started by a short exec, and
  # is seen running before this returns. The script travels as an argument: piped into `kubectl exec
  # -i`, it sometimes arrived empty (the cause of two earlier failures at this step).
  kubectl -n "$NS" exec "$1" -- sh -c 'printf "%s\n" "$0" > /tmp/loop.sh; rm -f /tmp/loop.done /tmp/loop.stop /tmp/loop.err' "$loop_script" || fail "loop script into pod $1"
  [ "$(x "$1" 'cat /tmp/loop.sh')" = "$loop_script" ] || fail "pod $1's loop script arrived damaged"
  x "$1" "setsid sh /tmp/loop.sh $2 $3 </dev/null >/tmp/loop.out 2>&1 &" || fail "starting pod $1's loop"
  wait_for 15 "pod $1's loop started" "x $1 'cat /tmp/loop.out'" x "$1" 'test -e /tmp/loop.err'
}
loop_writing() { # pod A's file: waits for A's loop to write it (under load a kubectl exec takes seconds to start)
  wait_for 20 "pod a's loop wrote to $1" "x a 'cat /tmp/loop.out; head -n3 /tmp/loop.err'" x a "test -s $1"
}
stop_loop() { # pod: sets loop_result to "iterations longest-gap-ms uptime-it-ended"; fails on any error the loop met
  x "$1" 'touch /tmp/loop.stop'
  wait_for 15 "pod $1's loop finished" "x $1 'cat /tmp/loop.out'" x "$1" 'test -s /tmp/loop.done'
  loop_result=$(x "$1" 'cat /tmp/loop.done')
  local errors; errors=$(x "$1" 'cat /tmp/loop.err')
  [ -z "$errors" ] || fail "pod $1's loop met errors: $(echo "$errors" | sort | uniq -c | head -n5 | paste -sd';' -)"
}
# Milliseconds from uptime $2 to uptime $1 (the node's clock, which the pods share).
ms_after() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+d", (a - b) * 1000 }'; }
# Pod $1's longest stall that ended within 1 s after uptime $2: what the event itself cost it. The
# loop logs every gap above 40 ms; the longest overall may come from elsewhere (a loaded machine).
stall_after() { x "$1" 'cat /tmp/loop.gaps' | awk -v e="$2" '$2 >= e && $2 <= e + 1 && $1 > m { m = $1 } END { print (m ? m " ms" : "under 40 ms") }'; }
stop_loops() { # pod A's file, event uptime, event name: stops both loops, checks A's file holds every line A wrote, sets loops_result
  stop_loop a
  local a_lines a_stall a_at b_reads b_stall b_at
  read -r a_lines a_stall a_at <<<"$loop_result"
  stop_loop b
  read -r b_reads b_stall b_at <<<"$loop_result"
  x a "cat $1" >"$LHB_E2E_DIR/loop-a.txt"
  seq 0 $((a_lines - 1)) | cmp -s - "$LHB_E2E_DIR/loop-a.txt" || fail "pod A's file does not hold exactly the $a_lines lines it wrote: $(wc -l <"$LHB_E2E_DIR/loop-a.txt") lines"
  loops_result="no error in pod A or B; pod A: $a_lines lines written and all present, longest stall $a_stall ms (ended $(ms_after "$a_at" "$2") ms from $3), within 1 s of $3 $(stall_after a "$2"); pod B: $b_reads reads, longest stall $b_stall ms (ended $(ms_after "$b_at" "$2") ms from $3), within 1 s of $3 $(stall_after b "$2")"
}
start_loop a rw /workspace/current/loop-a.txt
start_loop b ro /workspace/current/notes/a.md
sleep 2
for p in a b; do
  if x "$p" 'test -s /tmp/loop.err' 2>/dev/null; then fail "pod $p's loop fails before the kill: $(x "$p" 'head -n3 /tmp/loop.err')"; fi
done
loop_writing /workspace/current/loop-a.txt
plugin=$(kubectl -n "$RELEASE_NS" get pods -l app.kubernetes.io/component=csi-node -o jsonpath='{.items[0].metadata.name}')
restarts() { kubectl -n "$RELEASE_NS" get pod "$plugin" -o jsonpath='{.status.containerStatuses[?(@.name=="plugin")].restartCount}'; }
before=$(restarts)
keeper=$(container_pid "$plugin" plugin)
[ -n "$keeper" ] || fail "no keeper process in the node plugin's container"
node_pid=$(pgrep -P "$keeper" | head -n1)
[ -n "$node_pid" ] || fail "no node process under the keeper (pid $keeper)"
kill -9 "$node_pid"
t=$(date +%s%N)
read -r killed_at _ </proc/uptime
# Created at once: the kubelet retries its mount until the restarted plugin answers.
pod d writer false
wait_until 10 "pod d Running within 10 s of the kill" pod_running d
ok "pod D created at the kill, mounted and Running $(ms_since "$t") ms after it"
[ "$(x d 'cat /workspace/current/notes/a.md')" = "from A" ] || fail "pod d reads the project"
new_pid=$(pgrep -P "$keeper" | head -n1)
[ -n "$new_pid" ] && [ "$new_pid" != "$node_pid" ] || fail "the keeper did not restart the node process"
[ "$(restarts)" = "$before" ] || fail "the plugin container restarted (restartCount $(restarts)); only its node process should have"
wait_until 20 "the plugin to log the takeover" sh -c \
  "kubectl -n $RELEASE_NS logs $plugin -c plugin | grep -q 'took over the live mount after restart'"
note "keeper $keeper restarted the node process ($node_pid -> $new_pid), container restartCount unchanged; the plugin logs 'took over the live mount after restart'"
sleep 2
stop_loops /workspace/current/loop-a.txt "$killed_at" "the kill"
ok "$loops_result"

# ---------------------------------------------------------------------------------------------
step "helm upgrade that changes the plugin's arguments: the new plugin pod takes the live mounts over from the old one; pods A and B carry on"
# A real DaemonSet rollout (maxSurge 1): the new pod's keeper finds the old one's lock on the shared
# state dir and starts as its successor; the new plugin takes every mount over, retires the old
# plugin once, and the DaemonSet controller deletes the old pod when the new one is Ready.
old_plugin=$plugin
ds=$(kubectl -n "$RELEASE_NS" get ds -l app.kubernetes.io/component=csi-node -o jsonpath='{.items[0].metadata.name}')
start_loop a rw /workspace/current/upgrade-a.txt
start_loop b ro /workspace/current/notes/a.md
loop_writing /workspace/current/upgrade-a.txt
sleep 1
kubectl -n "$RELEASE_NS" logs -f "$old_plugin" -c plugin --since=1s >"$LHB_E2E_DIR/old-plugin.log" 2>&1 &
t=$(date +%s%N)
helm upgrade "$RELEASE" "$root/charts/lighthouse-bridge" --namespace "$RELEASE_NS" --reuse-values \
  --set csi.metricsPort=9092 >/dev/null || fail "helm upgrade"
kubectl -n "$RELEASE_NS" rollout status "ds/$ds" --timeout=180s >/dev/null || fail "rollout of ds/$ds"
old_gone() { ! kubectl -n "$RELEASE_NS" get pod "$old_plugin" >/dev/null 2>&1; }
wait_until 60 "the old plugin pod $old_plugin gone" old_gone
read -r gone_at _ </proc/uptime
plugin=$(kubectl -n "$RELEASE_NS" get pods -l app.kubernetes.io/component=csi-node -o jsonpath='{.items[0].metadata.name}')
[ "$plugin" != "$old_plugin" ] || fail "no new plugin pod"
ok "rolled out in $(ms_since "$t") ms: $old_plugin -> $plugin"
new_log=$(kubectl -n "$RELEASE_NS" logs "$plugin" -c plugin)
retired=$(echo "$new_log" | grep '"predecessor retired"' | head -n1)
[ -n "$retired" ] || fail "the new plugin did not log 'predecessor retired': $(echo "$new_log" | tail -n 20)"
echo "$new_log" | grep -q 'took over the live mount' || fail "the new plugin did not log a takeover: $(echo "$new_log" | tail -n 20)"
echo "$new_log" | grep -q 'a keeper serves .*: serving .*\.next as its successor' || fail "the new keeper did not start as the successor"
handover_ms=$(echo "$retired" | grep -o '"ms":[0-9]*' | cut -d: -f2)
# The log's wall-clock time of the retirement on the node's uptime clock.
read -r up _ </proc/uptime
retired_at=$(awk -v up="$up" -v now="$(date +%s.%N)" -v at="$(date -d "$(echo "$retired" | grep -o '"timestamp":"[^"]*' | cut -d'"' -f4)" +%s.%N)" 'BEGIN { printf "%.3f", up - (now - at) }')
handover_mounts=$(echo "$retired" | grep -o '"mounts":[0-9]*' | cut -d: -f2)
note "the new plugin logs 'predecessor retired' ($handover_mounts mounts, old plugin gone $handover_ms ms after SIGTERM) and 'took over the live mount'"
# The retired pod's keeper lives on without a plugin, so its liveness probe fails: it must be
# deleted before the kubelet restarts it (a restarted old keeper would succeed the new one).
restarted=$(kubectl -n "$RELEASE_NS" get events --field-selector "involvedObject.name=$old_plugin,reason=Killing" -o jsonpath='{.items[*].message}')
if echo "$restarted" | grep -q 'liveness'; then fail "the kubelet restarted the retired pod: $restarted"; fi
note "the old pod was deleted, not restarted: seen gone $(ms_after "$gone_at" "$retired_at") ms from the retirement (polled after the rollout)"
sleep 2
stop_loops /workspace/current/upgrade-a.txt "$retired_at" "the retirement"
ok "$loops_result (goal < 200 ms)"

# ---------------------------------------------------------------------------------------------
step "kill -9 of the keeper (the container's init): the mounts die with it; a NEW pod mounts after the container restarts"
before=$(restarts)
keeper=$(container_pid "$plugin" plugin)
[ -n "$keeper" ] || fail "no keeper process in the node plugin's container"
kill -9 "$keeper"
t=$(date +%s%N)
pod e writer false
wait_until 30 "pod e Running within 30 s of the kill" pod_running e
ok "pod E created at the kill, mounted and Running $(ms_since "$t") ms after it"
[ "$(x e 'cat /workspace/current/notes/a.md')" = "from A" ] || fail "pod e reads the project"
[ "$(restarts)" -gt "$before" ] || fail "the plugin container did not restart"
seen_by_a=$(x a 'ls /workspace/current 2>&1 >/dev/null | head -n1; true' 2>&1)
echo "$seen_by_a" | grep -q 'not connected' || fail "running pod A should see its dead mount, saw: ${seen_by_a:-its files}"
note "plugin container restarted (restartCount $(restarts)); pod E reads A's files; running pod A sees: $seen_by_a (no keeper, no custody)"

# ---------------------------------------------------------------------------------------------
step "deleting the pods leaves no mount and no publish record; deleting the project removes its Redis user and keys"
kubectl -n "$NS" delete pod a b c d e --wait=true --timeout=60s >/dev/null || fail "pods not deleted"
no_fuse_mounts() { [ -z "$(fuse_mounts)" ]; }
wait_until 30 "no FUSE mount left under the kubelet dir" no_fuse_mounts
records=$(find "$STATE_DIR" -type f -path '*publish*' 2>/dev/null | wc -l)
[ "$records" = 0 ] || fail "publish records left: $(find "$STATE_DIR" -type f -path '*publish*')"
note "no FUSE mount under $LHB_E2E_KUBELET_DIR, no publish record in $STATE_DIR"
kubectl -n "$NS" delete bridgeproject "$PROJECT" --wait=true --timeout=60s >/dev/null || fail "BridgeProject not deleted"
acl_after=$(redis-cli -p "$REDIS_PORT" ACL USERS | sort | paste -sd' ' -)
[ "$acl_after" = "$acl_before" ] || fail "ACL users left: before '$acl_before', after '$acl_after'"
keys=$(redis-cli -p "$REDIS_PORT" --scan --pattern "lhb:{$NS/$PROJECT}:*" | wc -l)
[ "$keys" = 0 ] || fail "$keys keys of $NS/$PROJECT left with deletionPolicy Delete"
ok "ACL users back to '$acl_after'; no key lhb:{$NS/$PROJECT}:*"

# ---------------------------------------------------------------------------------------------
step "helm uninstall leaves nothing of ours on the node"
helm uninstall "$RELEASE" --namespace "$RELEASE_NS" --wait --timeout 2m >/dev/null || fail "helm uninstall"
no_process() { [ -z "$(pod_process "$1")" ]; }
wait_until 60 "no node plugin process" no_process 'cli/dist/main.js csi'
wait_until 30 "no keeper process" no_process 'lighthouse-bridge-keeper'
wait_until 30 "no operator process" no_process 'cli/dist/main.js operator'
# Except the keepers' empty lock files: removing one would let two starting keepers lock different files.
left=$(find "$PLUGIN_DIR" "$LHB_E2E_KUBELET_DIR/plugins_registry" "$STATE_DIR" \( -type s -o -type f \) ! -name keeper.sock.lock ! -name keeper.sock.next.lock 2>/dev/null || true)
[ -z "$left" ] || fail "left on the node: $left"
[ -z "$(fuse_mounts)" ] || fail "FUSE mounts left: $(fuse_mounts)"
ok "no process, socket, record or mount of ours"
