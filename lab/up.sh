#!/usr/bin/env bash
# lab/up.sh — bring up the holiday test lab (root). See lab/README.md.
#   HOLIDAY_LAB_DIR    runtime dir (default /var/tmp/holiday-lab); the env file is $HOLIDAY_LAB_DIR/env
#   HOLIDAY_LAB_CACHE  cache of the S3 server and root trees (default /var/cache/holiday-lab)
#   LIGHT_HOSTS=N      N extra cheap SysV hosts light1..N (10.213.0.101+)
#   HOLIDAY_LAB_TIMEOUT seconds to wait for all hosts (default 180)
#   HOLIDAY_LAB_NF_LOG=1 also set net.netfilter.nf_log_all_netns=1 (restored by down.sh)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
with_lock
TIMEOUT=${HOLIDAY_LAB_TIMEOUT:-180}
[ "$LIGHT_HOSTS" -le 150 ] 2>/dev/null || die "LIGHT_HOSTS must be 0..150"

"$LAB_SRC/setup.sh"
ROOTFS=$(rootfs_dir)
VGW=$LAB_CACHE/versitygw-$VGW_VERSION/versitygw

if ! "$LAB_SRC/status.sh" >/dev/null 2>&1; then
  log "a lab (or what is left of one) exists; taking it down first"
  "$LAB_SRC/down.sh"
fi
log "setup checked"

mkdir -p "$LAB_DIR"
rm -rf "$LAB_DIR/hosts" "$LAB_DIR/env" "$LAB_DIR/s3" "$LAB_DIR/locks"   # every lab starts empty
mkdir -p "$LAB_DIR/hosts" "$LAB_DIR/s3/data" "$LAB_DIR/s3/versions"
chmod 700 "$LAB_DIR"
lab_hosts >"$LAB_DIR/hosts.list"
rm -f "$LAB_DIR/id_ed25519" "$LAB_DIR/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -C holiday-lab -f "$LAB_DIR/id_ed25519"

# --- network: a bridge with no uplink; ip_forward untouched; no default route anywhere ---
ip link add "$BRIDGE" type bridge
ip addr add "$CONTROL4/24" dev "$BRIDGE"
ip addr add "$CONTROL6/64" dev "$BRIDGE" nodad
ip link set "$BRIDGE" up
while read -r h kind v4 v6 role; do
  ns=$NS_PREFIX$h
  ip netns add "$ns"
  ip link add "$VETH_PREFIX$h" type veth peer name eth0 netns "$ns"
  ip link set "$VETH_PREFIX$h" master "$BRIDGE" up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$v4/24" dev eth0
  ip -n "$ns" addr add "$v6/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
done <"$LAB_DIR/hosts.list"
if [ "${HOLIDAY_LAB_NF_LOG:-0}" = 1 ]; then
  sysctl -n net.netfilter.nf_log_all_netns >"$LAB_DIR/nf_log_all_netns.saved"
  sysctl -qw net.netfilter.nf_log_all_netns=1
fi
log "network up"

# --- hosts: each boots from its own copy-on-write root ---
# (long-lived children must not inherit the lock's fd, or the lab would hold the lock for life)
: >"$LAB_DIR/known_hosts"
while read -r h kind v4 v6 role; do
  D=$LAB_DIR/hosts/$h
  mkdir -p "$D/t"
  ssh-keygen -q -t ed25519 -N '' -C "hlab-$h" -f "$D/ssh_host_ed25519_key"
  echo "$v4,$v6 $(cut -d' ' -f1,2 "$D/ssh_host_ed25519_key.pub")" >>"$LAB_DIR/known_hosts"
  if [ "$kind" = systemd ]; then
    unshare --mount "$LAB_SRC/host-systemd.sh" "$h" "$role" "$ROOTFS" </dev/null >"$D/console.log" 2>&1 {_lockfd}>&- &
    echo $! >"$D/runner.pid"
  else
    ip netns exec "$NS_PREFIX$h" unshare --mount --uts --ipc --pid --fork --kill-child \
      "$LAB_SRC/host-sysv.sh" "$h" "$role" "$ROOTFS" </dev/null >"$D/init.log" 2>&1 {_lockfd}>&- &
    echo $! >"$D/unshare.pid"
  fi
done <"$LAB_DIR/hosts.list"
log "hosts starting"

# --- S3: versitygw on loopback and on the bridge ---
env -u AWS_CA_BUNDLE "$VGW" --port "127.0.0.1:$S3_PORT" --port "$CONTROL4:$S3_PORT" \
  --access "$S3_ACCESS" --secret "$S3_SECRET" --quiet \
  posix --versioning-dir "$LAB_DIR/s3/versions" "$LAB_DIR/s3/data" </dev/null >"$LAB_DIR/versitygw.log" 2>&1 {_lockfd}>&- &
echo $! >"$LAB_DIR/versitygw.pid"

SSH=(ssh -n -i "$LAB_DIR/id_ed25519" -o UserKnownHostsFile="$LAB_DIR/known_hosts" -o StrictHostKeyChecking=yes
  -o BatchMode=yes -o ConnectTimeout=2 -o LogLevel=ERROR)
deadline=$(($(date +%s) + TIMEOUT))
host_failed() { # name kind why
  local D=$LAB_DIR/hosts/$1
  echo "[up.sh] host $1 ($2) not ready after ${TIMEOUT}s: $3" >&2
  if [ "$2" = systemd ]; then
    echo "--- tail of $D/console.log ---" >&2; tail -n 40 "$D/console.log" >&2
    "${SSH[@]}" "root@$v4" 'systemctl --failed --no-legend; systemctl list-jobs --no-legend' >&2 2>&1 || true
  else
    echo "--- tail of $D/init.log ---" >&2; tail -n 40 "$D/init.log" >&2
  fi
  exit 1
}
# wait_for NAME KIND CMD...: poll CMD over ssh as root until it succeeds or the deadline passes
wait_for() {
  local h=$1 kind=$2 out; shift 2
  until out=$("${SSH[@]}" "root@$v4" "$@" 2>&1); do
    [ "$(date +%s)" -lt "$deadline" ] || host_failed "$h" "$kind" "'$*' said: ${out:-nothing}"
    sleep 0.2
  done
}
while read -r h kind v4 v6 role; do
  if [ "$kind" = systemd ]; then
    wait_for "$h" "$kind" 'st=$(systemctl is-system-running); echo "$st"; case $st in running|degraded) ;; *) exit 1;; esac'
    # seeded "active but disabled": started now, each lab-up, never enabled
    "${SSH[@]}" "root@$v4" systemctl start lab-worker.service
    case $role in
      sys1) units="ssh nginx redis-server cron lab-firewall lab-echo.socket lab-tick.timer lab-worker" ;;
      sys2) units="ssh postgresql@15-main mariadb cron lab-firewall lab-echo.socket lab-tick.timer lab-worker" ;;
    esac
    wait_for "$h" "$kind" "systemctl is-active -q $units"
  else
    wait_for "$h" "$kind" 'test -e /run/lab-ready'
  fi
  log "host $h ($kind, $v4, $v6) ready"
done <"$LAB_DIR/hosts.list"
for _ in $(seq 100); do ss -Hltn "sport = :$S3_PORT" | grep -q "$CONTROL4:$S3_PORT" && break; sleep 0.05; done
ss -Hltn "sport = :$S3_PORT" | grep -q "127.0.0.1:$S3_PORT" || { cat "$LAB_DIR/versitygw.log" >&2; die "versitygw is not listening on :$S3_PORT"; }

# the disk backup source's block device, inside sysv1
"$LAB_SRC/disk.sh" up

pairs() { awk -v col="$1" '{printf "%s%s=%s", (NR > 1 ? " " : ""), $1, $col}' "$LAB_DIR/hosts.list"; }
cat >"$LAB_DIR/env.tmp" <<ENV
LAB_DIR=$LAB_DIR
LAB_SSH_KEY=$LAB_DIR/id_ed25519
LAB_KNOWN_HOSTS=$LAB_DIR/known_hosts
LAB_HOSTS="$(pairs 3)"
LAB_HOSTS6="$(pairs 4)"
LAB_HOST_KINDS="$(pairs 2)"
LAB_NETNS_PREFIX=$NS_PREFIX
LAB_ROOTFS=$ROOTFS
LAB_CONTROL_ADDR=$CONTROL4
LAB_CONTROL_ADDR6=$CONTROL6
LAB_S3_ENDPOINT=http://$CONTROL4:$S3_PORT
LAB_S3_REGION=us-east-1
LAB_S3_ACCESS_KEY=$S3_ACCESS
LAB_S3_SECRET_KEY=$S3_SECRET
ENV
mv "$LAB_DIR/env.tmp" "$LAB_DIR/env"
log "lab ready: $(wc -l <"$LAB_DIR/hosts.list") hosts; env in $LAB_DIR/env"
