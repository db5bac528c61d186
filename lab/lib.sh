# lab/lib.sh — shared by setup.sh, up.sh, down.sh and status.sh (sourced, not run).
# Every name the lab creates is derived here, so down.sh and status.sh find exactly what up.sh made.

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_DIR=${HOLIDAY_LAB_DIR:-/var/tmp/holiday-lab}
LAB_CACHE=${HOLIDAY_LAB_CACHE:-/var/cache/holiday-lab}
LAB_LOCK=${HOLIDAY_LAB_LOCK:-/run/lock/holiday-lab.lock}
LIGHT_HOSTS=${LIGHT_HOSTS:-0}
VGW_VERSION=v1.8.0
BRIDGE=hlabbr0
NS_PREFIX=hlab-          # network namespace (and nspawn machine) of host X is hlab-X
VETH_PREFIX=hlv-         # host-side veth of host X is hlv-X (15-char limit: X at most 11)
CONTROL4=10.213.0.1 CONTROL6=fd00:213::1
S3_PORT=7070 S3_ACCESS=LABACCESSKEY S3_SECRET=LABSECRETKEY0123456789

_t0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - _t0) / 1000000 )); }
log() { echo "[${0##*/} +$(ms)ms] $*" >&2; }
die() { echo "[${0##*/}] error: $*" >&2; exit 1; }

# lab_hosts prints "name kind v4 v6 role" for every host of this lab.
# kind is what a client sees (systemd: systemd is PID 1; sysv: /etc/init.d via service(8));
# role picks the seed under lab/hosts/.
lab_hosts() {
  echo "sys1 systemd 10.213.0.11 fd00:213::11 sys1"
  echo "sys2 systemd 10.213.0.12 fd00:213::12 sys2"
  echo "sysv1 sysv 10.213.0.13 fd00:213::13 sysv1"
  local i
  for ((i = 1; i <= LIGHT_HOSTS; i++)); do
    echo "light$i sysv 10.213.0.$((100 + i)) fd00:213::$((100 + i)) light"
  done
}

# with_lock runs the rest of the script under the lab's lock (one lab per machine at a time).
# Nested scripts (up.sh calling setup.sh) inherit it through HOLIDAY_LAB_LOCK_HELD.
# Long-lived children must be started with {_lockfd}>&- so they do not keep the lock.
with_lock() {
  if [ "${HOLIDAY_LAB_LOCK_HELD:-}" = 1 ]; then exec {_lockfd}</dev/null; return 0; fi  # fd for {_lockfd}>&-
  mkdir -p "$(dirname "$LAB_LOCK")"
  exec {_lockfd}>"$LAB_LOCK"
  flock -w 900 "$_lockfd" || die "could not take $LAB_LOCK within 15 min (another lab-up/down running?)"
  export HOLIDAY_LAB_LOCK_HELD=1
}

# cgroup_bases prints the cgroup directories this process is in that systemd-nspawn takes a
# container's cgroup from: the unified (v2) hierarchy, and on a v1 or hybrid machine the named
# systemd one as well. lab_cgroups prints the per-host cgroups up.sh made below them.
cgroup_bases() {
  local v2 sd
  v2=$(sed -n 's/^0:://p' /proc/self/cgroup)
  if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then echo "/sys/fs/cgroup${v2%/}"; return; fi
  sd=$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup)
  [ -n "$sd" ] && [ -d /sys/fs/cgroup/systemd ] && echo "/sys/fs/cgroup/systemd${sd%/}"
  [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && echo "/sys/fs/cgroup/unified${v2%/}"
  return 0
}
lab_cgroups() {
  find /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup -xdev -type d -name "$NS_PREFIX*" -prune 2>/dev/null | sort -u
}

require_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# rootfs_key hashes everything that goes into the hosts' root tree: a change rebuilds it.
rootfs_key() {
  (cd "$LAB_SRC" && { cat rootfs.packages rootfs-seed.sh; find rootfs -type f | LC_ALL=C sort | xargs sha256sum; }) |
    sha256sum | cut -c1-16
}
rootfs_dir() { echo "$LAB_CACHE/rootfs-$(rootfs_key)"; }

# prepare_root R NAME ROLE writes what makes the mounted copy-on-write root R host NAME:
# identity, its ssh host key, the lab key for root/ops/guest, firewall rules, and the role's
# seed (lab/hosts/ROLE.sh, run in a chroot of R). Everything lands in R's upper layer only.
prepare_root() {
  local R=$1 name=$2 role=$3 D=$LAB_DIR/hosts/$2 u home
  echo "hlab-$name" >"$R/etc/hostname"
  {
    printf '127.0.0.1\tlocalhost\n127.0.1.1\thlab-%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$name"
    printf '%s\thlab-control\n%s\thlab-control\n' "$CONTROL4" "$CONTROL6"
    lab_hosts | while read -r h _ v4 v6 _; do printf '%s\thlab-%s\n%s\thlab-%s\n' "$v4" "$h" "$v6" "$h"; done
  } >"$R/etc/hosts"
  install -m 600 "$D/ssh_host_ed25519_key" "$R/etc/ssh/ssh_host_ed25519_key"
  install -m 644 "$D/ssh_host_ed25519_key.pub" "$R/etc/ssh/ssh_host_ed25519_key.pub"
  for u in root ops guest; do
    home=$(awk -F: -v u="$u" '$1 == u {print $6}' "$R/etc/passwd")
    install -d -m 700 "$R$home/.ssh"
    install -m 600 "$LAB_DIR/id_ed25519.pub" "$R$home/.ssh/authorized_keys"
    chroot "$R" chown -R "$u:" "$home/.ssh"
  done
  mkdir -p "$R/etc/systemd/system.conf.d" "$R/etc/lab" "$R/etc/iptables"
  printf '[Manager]\nDefaultTimeoutStopSec=5s\n' >"$R/etc/systemd/system.conf.d/10-lab.conf" # bounded poweroff
  echo "$role" >"$R/etc/lab/role"
  echo "hlab-$name" >"$R/var/www/html/index.html"
  local f
  for f in rules.v4 rules.v6; do
    [ ! -f "$LAB_SRC/hosts/$role.$f" ] || install -m 640 "$LAB_SRC/hosts/$role.$f" "$R/etc/iptables/$f"
  done
  chroot "$R" /bin/bash -s <"$LAB_SRC/hosts/$role.sh"
}
