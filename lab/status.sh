#!/usr/bin/env bash
# lab/status.sh — list everything of the lab that exists on this machine: network namespaces,
# links, mounts, processes, nspawn leftovers. Exit 0 and print "nothing" when there is none;
# exit 1 when anything is there (CI calls it after down.sh to assert nothing is left).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
found=0
item() { echo "$*"; found=1; }

for ns in $(ip netns list 2>/dev/null | awk -v p="$NS_PREFIX" 'index($1, p) == 1 {print $1}'); do
  item "netns $ns (pids: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' '))"
done
ip link show "$BRIDGE" >/dev/null 2>&1 && item "link $BRIDGE"
for l in $(ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep "^$VETH_PREFIX"); do
  item "link $l"
done
grep -E "hlab-|$LAB_DIR/|$LAB_CACHE/" /proc/mounts 2>/dev/null | while read -r src dst _; do
  echo "mount $src on $dst"
done | grep . && found=1
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = $$ ] && continue
  cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
  root=$(readlink "$p/root" 2>/dev/null) || root=/
  case "$cmd" in
    *"$LAB_SRC/host-"*|*"--machine=$NS_PREFIX"*|*"$LAB_CACHE/versitygw"*) item "process $pid: $cmd"; continue ;;
  esac
  case "$root" in "$LAB_DIR"/*|"$LAB_CACHE"/*) item "process $pid (root $root): $cmd" ;; esac
done
loop=$("$LAB_SRC/disk.sh" status) && [ -n "$loop" ] && item "$loop"
for d in /run/systemd/nspawn/propagate/"$NS_PREFIX"*; do [ -e "$d" ] && item "dir $d"; done
for cg in $(lab_cgroups); do item "cgroup $cg"; done
[ -f "$LAB_DIR/nf_log_all_netns.saved" ] && item "net.netfilter.nf_log_all_netns changed by the lab (saved value in $LAB_DIR)"

if [ "$found" = 0 ]; then echo "lab: nothing up"; exit 0; fi
exit 1
