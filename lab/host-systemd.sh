#!/usr/bin/env bash
# lab/host-systemd.sh NAME ROLE ROOTFS — internal to up.sh. Runs in a private mount namespace
# (unshare --mount): mounts the host's copy-on-write root (overlay of the cached tree, upper on
# tmpfs), seeds it, and boots it with systemd-nspawn in netns hlab-NAME. A reboot inside the
# host (nspawn exit 133) boots it again on the same root; a poweroff inside (exit 0) keeps the
# root until lab/poweron.sh NAME; SIGTERM powers it off cleanly.
# All mounts die with this process's mount namespace: none is ever visible on the machine.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
name=$1 role=$2 ROOTFS=$3 D=$LAB_DIR/hosts/$1
mount --make-rprivate /
mount -t tmpfs -o size=4g,mode=755 "hlab-$name" "$D/t"
mkdir -p "$D/t/upper" "$D/t/work" "$D/t/root"
R=$D/t/root
mount -t overlay "hlab-$name" -o "lowerdir=$ROOTFS,upperdir=$D/t/upper,workdir=$D/t/work" "$R"
prepare_root "$R" "$name" "$role"
# systemd-remount-fs remounts / from /etc/fstab; nspawn mounted the root already and the
# cached tree's fstab is empty. It failed now and then after an in-host reboot (CI, once),
# which made "the same units as before" tests fail for a reason that is not holiday's.
ln -sf /dev/null "$R/etc/systemd/system/systemd-remount-fs.service"

# A cgroup of its own for each systemd host: nspawn --keep-unit gives the container the cgroup
# it is started in, and two hosts in one share its payload/system.slice, where one host's
# systemd removes the other's unit cgroups. On a cgroup v1 machine sys2's lab-firewall.service
# failed at boot that way ("Failed at step CGROUP … No such file or directory") and its sshd
# dropped sessions after key exchange. down.sh removes these cgroups; status.sh lists leftovers.
cgs=()
for base in $(cgroup_bases); do
  mkdir -p "$base/hlab-$name" && echo $$ >"$base/hlab-$name/cgroup.procs" ||
    { echo "[lab] hlab-$name: cannot move into a cgroup of its own under $base"; exit 1; }
  cgs+=("$base")
done

pid=
trap 'touch "$D/stopping"; [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null' TERM INT
set +e
while :; do
  echo "[lab] booting hlab-$name"
  systemd-nspawn -q -D "$R" -b --register=no --keep-unit --machine="hlab-$name" --hostname="hlab-$name" \
    --uuid="$(tr -d - </proc/sys/kernel/random/uuid)" --network-namespace-path="/run/netns/hlab-$name" \
    --capability=CAP_NET_ADMIN,CAP_NET_RAW --resolv-conf=off --timezone=off --link-journal=no \
    --console=read-only &
  pid=$!
  wait "$pid"; rc=$?
  while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done  # a trap ends the first wait early
  [ -e "$D/stopping" ] && break
  if [ "$rc" = 0 ]; then
    # Powered off from inside (holiday's power step): like a machine
    # with its disk, the root stays until lab/poweron.sh NAME presses
    # the button (or lab-down ends it).
    rm -f "$D/poweron"
    touch "$D/off"
    echo "[lab] hlab-$name powered off; lab/poweron.sh $name switches it on"
    while [ ! -e "$D/poweron" ] && [ ! -e "$D/stopping" ]; do sleep 0.2; done
    rm -f "$D/off" "$D/poweron"
    [ -e "$D/stopping" ] && break
    echo "[lab] hlab-$name powered on"
    continue
  fi
  [ "$rc" = 133 ] || { echo "[lab] hlab-$name: systemd-nspawn exited $rc"; break; }
  echo "[lab] hlab-$name rebooted"
done
echo "[lab] hlab-$name stopped"
for base in "${cgs[@]}"; do   # out of our own cgroup, then remove it with what nspawn left below
  echo $$ >"$base/cgroup.procs" && find "$base/hlab-$name" -depth -type d -exec rmdir {} + 2>/dev/null
done
