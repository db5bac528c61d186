#!/usr/bin/env bash
# lab/disk.sh up|down — the lab's block device for the `disk` backup source: a 64 MiB ext4
# image on a loop device of this machine, seen inside sysv1 as /dev/vdb (a node made in its
# private /dev; the sysv hosts have no device cgroup) and mounted there at /srv/data, so that
# lockdown's fsfreeze runs on a real mounted filesystem. up is idempotent; down detaches the
# loop device (sysv1's mount goes with its namespace). up.sh and down.sh call it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HOST=sysv1
IMG=$LAB_DIR/disk-$HOST.img
REC=$LAB_DIR/disk-$HOST.loop

# loop_of IMG: the loop device backed by IMG, if any
loop_of() { losetup -j "$1" -O NAME -n 2>/dev/null | head -n1; }

case "${1:-}" in
up)
  if [ ! -f "$IMG" ]; then
    seed=$(mktemp -d)
    mkdir -p "$seed/app"
    printf 'lab disk of %s\n' "$HOST" >"$seed/README"
    head -c 8M /dev/urandom >"$seed/app/data.bin"
    truncate -s 64M "$IMG.tmp"
    mkfs.ext4 -q -F -L holiday-lab -d "$seed" "$IMG.tmp"
    rm -rf "$seed"
    mv "$IMG.tmp" "$IMG"
  fi
  dev=$(loop_of "$IMG")
  [ -n "$dev" ] || dev=$(losetup -f --show "$IMG")
  echo "$dev" >"$REC"
  read -r maj min < <(stat -c '%t %T' "$dev")
  maj=$((16#$maj)) min=$((16#$min))
  init=$(pgrep -P "$(cat "$LAB_DIR/hosts/$HOST/unshare.pid")" | head -n1)
  nsenter -t "$init" -m -- sh -c "
    [ -b /dev/vdb ] || mknod /dev/vdb b $maj $min
    mkdir -p /srv/data
    mountpoint -q /srv/data || mount /dev/vdb /srv/data"
  echo "[disk.sh] $HOST: /dev/vdb = $dev ($IMG), mounted at /srv/data"
  ;;
down)
  dev=$(loop_of "$IMG")
  [ -z "$dev" ] || losetup -d "$dev" || true
  rm -f "$IMG" "$REC"
  ;;
status)
  dev=$(loop_of "$IMG")
  [ -z "$dev" ] || echo "loop device $dev ($IMG)"
  ;;
*) echo "usage: $0 up|down|status" >&2; exit 1 ;;
esac
