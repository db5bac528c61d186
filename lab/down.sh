#!/usr/bin/env bash
# lab/down.sh — take the lab down completely: no namespace, mount, process, veth or bridge
# left behind. Idempotent; safe when nothing is up. Ends only the lab's own processes: those
# recorded in its pid files (checked against their command line) and those inside its
# network namespaces. Exits with lab/status.sh's verdict (0: nothing left).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
with_lock

rm -f "$LAB_DIR/env"   # first: no test may pick up a lab that is going away
# pid_of FILE PATTERN: the pid in FILE if that process is alive and its command line has PATTERN
pid_of() {
  local p
  p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$2" && echo "$p"
}
alive() { kill -0 "$1" 2>/dev/null; }
wait_gone() { # seconds pid...
  local n=$(($1 * 10)) p; shift
  for ((; n > 0; n--)); do
    for p in "$@"; do alive "$p" && break; done
    alive "$p" || return 0
    sleep 0.1
  done
  return 1
}

if p=$(pid_of "$LAB_DIR/versitygw.pid" versitygw); then
  kill -TERM "$p"; wait_gone 5 "$p" || kill -KILL "$p"
fi
rm -f "$LAB_DIR/versitygw.pid"

runners=()
for D in "$LAB_DIR"/hosts/*/; do
  [ -d "$D" ] || continue
  D=${D%/}
  if p=$(pid_of "$D/runner.pid" "$LAB_SRC/host-systemd.sh"); then
    touch "$D/stopping"
    kill -TERM "$p"   # -> systemd-nspawn SIGTERM -> the container's systemd powers off
    runners+=("$p")
  fi
  # unshare --fork ignores SIGTERM; SIGKILL makes --kill-child take the pid namespace down
  if p=$(pid_of "$D/unshare.pid" "$LAB_SRC/host-sysv.sh"); then kill -KILL "$p"; fi
done
if [ ${#runners[@]} -gt 0 ] && ! wait_gone 30 "${runners[@]}"; then
  echo "[down.sh] a systemd host did not power off within 30 s; killing what is left in its namespace" >&2
fi

# whatever still runs inside a lab netns is the lab's (a hung container, a stray ssh session)
for ns in $(ip netns list 2>/dev/null | awk -v p="$NS_PREFIX" 'index($1, p) == 1 {print $1}'); do
  pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
  if [ -n "$pids" ]; then
    echo "[down.sh] killing what is left in $ns: $pids" >&2
    kill -KILL $pids 2>/dev/null
    wait_gone 5 $pids
  fi
done
for p in "${runners[@]}"; do alive "$p" && kill -KILL "$p"; done

for ns in $(ip netns list 2>/dev/null | awk -v p="$NS_PREFIX" 'index($1, p) == 1 {print $1}'); do
  ip netns del "$ns"
done
# a netns is freed asynchronously once its last process is gone: wait for the veths to vanish
for _ in $(seq 100); do
  ip -o link show 2>/dev/null | grep -q ": $VETH_PREFIX" || break
  sleep 0.1
done
ip link del "$BRIDGE" 2>/dev/null
"$LAB_SRC/disk.sh" down
rm -rf /run/systemd/nspawn/propagate/"$NS_PREFIX"* 2>/dev/null
for cg in $(lab_cgroups); do find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null; done
rm -f "$LAB_DIR"/hosts/*/runner.pid "$LAB_DIR"/hosts/*/unshare.pid "$LAB_DIR"/hosts/*/stopping
if [ -f "$LAB_DIR/nf_log_all_netns.saved" ]; then
  sysctl -qw net.netfilter.nf_log_all_netns="$(cat "$LAB_DIR/nf_log_all_netns.saved")" &&
    rm -f "$LAB_DIR/nf_log_all_netns.saved"
fi
log "done"
"$LAB_SRC/status.sh"
