#!/usr/bin/env bash
# lab/host-sysv.sh NAME ROLE ROOTFS — internal to up.sh. PID 1 of a fresh pid+mount+uts+ipc
# namespace inside netns hlab-NAME (ip netns exec … unshare --fork --kill-child). Mounts the
# host's whole root copy-on-write (overlay of the cached tree, upper on tmpfs), gives it its
# own /proc /dev /run /tmp, pivots into it and execs lab-sysv-init (which runs /etc/rc2.d).
# SIGKILL of the unshare parent takes the whole namespace, and with it every mount, away.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
name=$1 role=$2 ROOTFS=$3 D=$LAB_DIR/hosts/$1
mount --make-rprivate /
mount -t tmpfs -o size=4g,mode=755 "hlab-$name" "$D/t"
mkdir -p "$D/t/upper" "$D/t/work" "$D/t/root"
R=$D/t/root
mount -t overlay "hlab-$name" -o "lowerdir=$ROOTFS,upperdir=$D/t/upper,workdir=$D/t/work" "$R"
prepare_root "$R" "$name" "$role"

mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys" 2>/dev/null || mount --rbind -o ro /sys "$R/sys"
mount -t tmpfs -o mode=755,size=64m dev "$R/dev"
for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=755,size=256m run "$R/run"
mkdir -p "$R/run/lock" "$R/run/sshd" && chmod 1777 "$R/run/lock"
mount -t tmpfs -o mode=1777 tmp "$R/tmp"

cd "$R"
mkdir -p .lab-oldroot
pivot_root . .lab-oldroot
cd /
umount -l /.lab-oldroot
rmdir /.lab-oldroot
exec /usr/local/sbin/lab-sysv-init
