#!/bin/bash
# bench/backup.sh (make bench-backup): holiday's host backup against stock
# restic on the same data on the same lab host (sysv1), median of RUNS
# (default 3), side by side, as ratios (restic's time ÷ holiday's: higher
# is better for holiday):
#
#   - first backup of a file tree (200 MB, 5,000 files, generated
#     deterministically on the control node and copied to the host's
#     /srv/hb-bench-tree): `holiday backup` (the host backups alone) into a fresh
#     repository on the control node, against `restic backup` run ON THE
#     HOST into a fresh repository on the control node over SFTP (goal:
#     holiday >= 1.5x faster);
#   - the unchanged second backup of the same tree (goal: >= 3x);
#   - a disk image through SSH: a 1 GiB loop device (60 % random, 40 %
#     zeros, held open by the bench so it reads from memory: see below)
#     seen inside the host, holiday's `disk` source against
#     `ssh host cat DEV | restic backup --stdin` on the control node
#     (goal: holiday >= 400 MB/s);
#   - the PostgreSQL dump is bench/backup-pg.sh's (make bench-backup runs
#     both).
#
# Times are wall times of the whole command (SSH connect, repository
# open, holiday's read-back of what it wrote), so both pay the same
# fixed costs; holiday's data path alone is printed beside. Bytes crossing
# SSH: the host's interface counters (sent, received) around each run
# for both, and for holiday also its own count of what the agent sent.
#
# restic on the host reaches the control node over SFTP through an sshd
# the bench starts on 10.213.0.1:$BENCH_SFTP_PORT (default 2299) with a
# throw-away host key and client key; it, the tree, the disk and the keys
# are removed at the end. Takes the lab's lock of the host.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-backup
# shellcheck source=bench/lib.sh
. bench/lib.sh
lab_env
RUNS=${RUNS:-3}
HOST=${HOST:-sysv1}
PORT=${BENCH_SFTP_PORT:-2299}
ADDR=$(tr ' ' '\n' <<<"$LAB_HOSTS" | sed -n "s/^$HOST=//p")
[ -n "$ADDR" ] || die "the lab has no $HOST"
grep -q "$HOST=sysv" <<<"$LAB_HOST_KINDS" || die "$HOST is not a SysV host (the bench makes a device node in it)"
command -v restic >/dev/null || die "restic missing: apt-get install restic"
[ -x /usr/sbin/sshd ] && [ -x /usr/lib/openssh/sftp-server ] || die "sshd missing: apt-get install openssh-server (the bench starts its own, on port $PORT)"
command -v python3 >/dev/null || die "python3 missing (it generates the data): apt-get install python3"
on_host "$ADDR" 'command -v restic >/dev/null' || die "$HOST has no restic (lab/rootfs.packages)"
TREE=/srv/hb-bench-tree
DEV=/dev/hb-bench
HK=/root/.hb-bench # restic's ssh key and known_hosts on the host
W=$(mktemp -d /tmp/holiday-bench.XXXXXX)
mkdir -p "$LAB_DIR/locks"
exec {lockfd}>"$LAB_DIR/locks/$HOST"
flock "$lockfd"

LOOP=
cleanup() {
	[ -f "$W/sshd/pid" ] && kill "$(cat "$W/sshd/pid")" 2>/dev/null || true
	on_host "$ADDR" "rm -rf $TREE $HK /root/.cache/restic; rm -f $DEV" >/dev/null 2>&1 || true
	[ -z "${holdfd:-}" ] || exec {holdfd}<&-
	[ -z "$LOOP" ] || losetup -d "$LOOP" || true
	rm -rf "$W"
}
trap cleanup EXIT
build_holiday

# --- the data ---
echo "$BENCH: generating the tree and the disk image" >&2
python3 - "$W/tree" "$W/disk.img" <<'EOF'
import os, random, sys
tree, img = sys.argv[1], sys.argv[2]
r = random.Random(20261206)
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(4000)]
n = 0
for d in range(50):
    dd = os.path.join(tree, "d%02d" % d, "sub%d" % (d % 7))
    os.makedirs(dd)
    for f in range(100):
        p = os.path.join(dd, "f%03d" % f)
        if f < 80:  # text: configuration, logs, source (compressible)
            lines = []
            for _ in range(r.randint(10, 400)):
                lines.append(b" ".join(r.choice(words) for _ in range(r.randint(3, 12))) + b"\n")
            data = b"".join(lines)
        elif f < 99:  # binaries (incompressible)
            data = r.randbytes(r.randint(20 << 10, 180 << 10))
        else:  # a few large files
            data = r.randbytes(r.randint(1 << 20, 2 << 20))
        with open(p, "wb") as fh:
            fh.write(data)
        n += len(data)
print("tree: %d files, %.1f MB" % (5000, n / 1e6), file=sys.stderr)
with open(img, "wb") as fh:  # 1 GiB in 4 MiB runs: 3 of 5 random, 2 zero
    for i in range(256):
        fh.write(r.randbytes(4 << 20) if i % 5 < 3 else bytes(4 << 20))
EOF
TREE_BYTES=$(du -sb "$W/tree" | cut -f1)
DISK_BYTES=$(stat -c %s "$W/disk.img")
on_host "$ADDR" "rm -rf $TREE && mkdir -p $TREE" && tar -C "$W/tree" -cf - . | on_host "$ADDR" "tar -C $TREE -xf -"
rm -rf "$W/tree"
LOOP=$(losetup -f --show "$W/disk.img")
# The bench keeps the device open for its whole run. Linux drops a block
# device's page cache when its last opener closes it, so without this every
# read of the device, holiday's and restic's alike, would go through the
# loop driver's copy of the image file: 1.5 CPU-s per GiB on this VM's 2
# cores, which a real disk (read by DMA) does not cost. Held open, the
# device reads from memory, as the image file read by PERF.md's
# `ssh host cat img | restic backup --stdin` (224 MB/s, the goal's
# reference) does.
exec {holdfd}<"$LOOP"
read -r maj min < <(stat -c '%t %T' "$LOOP")
on_host "$ADDR" "rm -f $DEV; mknod $DEV b $((16#$maj)) $((16#$min)) && cat $DEV >/dev/null && find $TREE -type f -exec cat {} + >/dev/null"

# --- an sshd for restic's SFTP on the control node ---
mkdir -p "$W/sshd" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$W/sshd/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$W/sshd/client_key"
cp "$W/sshd/client_key.pub" "$W/sshd/authorized_keys"
cat >"$W/sshd/config" <<EOF
Port $PORT
ListenAddress $LAB_CONTROL_ADDR
HostKey $W/sshd/host_key
AuthorizedKeysFile $W/sshd/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $W/sshd/pid
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
/usr/sbin/sshd -f "$W/sshd/config" -E "$W/sshd/log" || die "sshd for SFTP did not start: $(cat "$W/sshd/log")"
on_host "$ADDR" "umask 077; mkdir -p $HK && cat >$HK/id" <"$W/sshd/client_key"
echo "[$LAB_CONTROL_ADDR]:$PORT $(cut -d' ' -f1,2 "$W/sshd/host_key.pub")" | on_host "$ADDR" "cat >$HK/known_hosts"
echo bench-backup-password >"$W/pw"
on_host "$ADDR" "cat >$HK/pw" <"$W/pw"
SFTP="ssh -F /dev/null -p $PORT -i $HK/id -o IdentitiesOnly=yes -o UserKnownHostsFile=$HK/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes root@$LAB_CONTROL_ADDR -s sftp"

# rx/tx byte counters of the host's interface (tx: the host sent)
counters() { ip netns exec "$LAB_NETNS_PREFIX$HOST" cat /sys/class/net/eth0/statistics/tx_bytes /sys/class/net/eth0/statistics/rx_bytes | paste -sd' '; }
# crossed BEFORE: "sent received" bytes since the counters BEFORE
crossed() {
	local b a
	read -r -a b <<<"$1"
	read -r -a a <<<"$(counters)"
	echo "$((a[0] - b[0])) $((a[1] - b[1]))"
}

plan() { # plan REPO SOURCE
	cat >"$W/plan.yaml" <<EOF
version: 1
name: $BENCH
management: [10.213.0.0/24]
repository: {url: $1, password_file: $W/pw}
ssh: {user: ops, identity: $LAB_SSH_KEY, known_hosts: $LAB_KNOWN_HOSTS, become: sudo}
defaults: {backup: none}
hosts:
  - name: $HOST
    address: $ADDR
    backup: [$2]
EOF
}
# holiday_backup: `holiday backup` of the plan; its CPU time on the
# control node (user + system, seconds) goes to $W/cpu (bash's times)
holiday_backup() {
	(
		"$W/holiday" backup -f "$W/plan.yaml" --state-dir "$W/state" --journal-key "$W/journal.key" --json
		times >"$W/times" # its second line: the children's
		tail -1 "$W/times" | awk '{ split($1, u, "m"); split($2, s, "m"); printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' >"$W/cpu"
	)
}
# jfield NAME: the first snapshot's field NAME in the last --json result
jfield() { grep -o "\"$1\": [0-9]*" "$W/out" | head -1 | awk '{print $2}'; }
new_repo() { rm -rf "$1" && "$W/holiday" repo init --repo "$1" --password-file "$W/pw" >/dev/null 2>&1; }
restic_stdin() { on_host "$ADDR" "cat $DEV" | restic -r "$W/repo-r" --password-file "$W/pw" backup -q --stdin --stdin-filename hb-bench; }
restic_host() { on_host "$ADDR" "RESTIC_PASSWORD_FILE=$HK/pw restic -r sftp:root@$LAB_CONTROL_ADDR:$1 -o sftp.command='$SFTP' $2"; }

# warm-up (untimed): the agent's upload and restic's first SFTP login
new_repo "$W/warm"
plan "$W/warm" "{files: [$TREE/d00]}"
secs holiday_backup >/dev/null
restic init --repo "$W/warm-r" --password-file "$W/pw" >/dev/null
secs restic_host "$W/warm-r" "backup -q $TREE/d00" >/dev/null
rm -rf "$W/warm" "$W/warm-r"

declare -a h1 h2 r1 r2 hd rd h1p h2p hdp h1b h2b r1b r2b hdb rdb h1w h2w hdw hdc
for run in $(seq "$RUNS"); do
	echo "$BENCH: run $run of $RUNS" >&2
	new_repo "$W/repo-h"
	restic init --repo "$W/repo-r" --password-file "$W/pw" >/dev/null
	on_host "$ADDR" "rm -rf /root/.cache/restic"
	plan "$W/repo-h" "{files: [$TREE]}"
	for pass in 1 2; do
		c=$(counters)
		t=$(secs holiday_backup)
		grep -q '"status": "done"' "$W/out" || die "holiday backup did not finish: $(cat "$W/out")"
		eval "h$pass+=($t) h${pass}b+=(\"$(crossed "$c")\") h${pass}p+=($(jfield elapsed_ns)) h${pass}w+=($(jfield wire_bytes))"
		c=$(counters)
		t=$(secs restic_host "$W/repo-r" "backup -q $TREE")
		eval "r$pass+=($t) r${pass}b+=(\"$(crossed "$c")\")"
	done
	rm -rf "$W/repo-h" "$W/repo-r" "$W/state"

	new_repo "$W/repo-h"
	plan "$W/repo-h" "{disk: $DEV}"
	c=$(counters)
	t=$(secs holiday_backup)
	grep -q '"status": "done"' "$W/out" || die "holiday backup of the disk did not finish: $(cat "$W/out")"
	hd+=("$t") hdb+=("$(crossed "$c")") hdp+=("$(jfield elapsed_ns)") hdw+=("$(jfield wire_bytes)") hdc+=("$(cat "$W/cpu")")
	restic init --repo "$W/repo-r" --password-file "$W/pw" >/dev/null
	c=$(counters)
	t=$(secs restic_stdin)
	rd+=("$t") rdb+=("$(crossed "$c")")
	rm -rf "$W/repo-h" "$W/repo-r" "$W/state"
done

# mb BYTES SECS: MB/s
mb() { echo "$1 / $2 / 1000000" | bc -l; }
# medpair "A B" ...: the median of each half
medpair() { local s=() r=() p; for p in "$@"; do s+=("${p% *}") r+=("${p#* }"); done; echo "$(median "${s[@]}") $(median "${r[@]}")"; }
line() { # line NAME HOLIDAY_S RESTIC_S GOAL
	printf '  %-30s holiday %7.2f s   restic %7.2f s   restic/holiday %5.2fx  (goal: >= %s)\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)" "$4"
}
bytes() { # bytes NAME "SENT RECEIVED" [AGENT]
	local s r extra=
	read -r s r <<<"$2"
	[ -z "${3:-}" ] || extra=$(printf ', the agent counted %.1f MB' "$(echo "$3 / 1000000" | bc -l)")
	printf '      %-26s %6.1f MB sent by the host, %6.2f MB received%s\n' "$1" "$(echo "$s / 1000000" | bc -l)" "$(echo "$r / 1000000" | bc -l)" "$extra"
}
H1=$(median "${h1[@]}") H2=$(median "${h2[@]}") R1=$(median "${r1[@]}") R2=$(median "${r2[@]}") HD=$(median "${hd[@]}") RD=$(median "${rd[@]}")
echo
echo "$HOST: tree $(echo "$TREE_BYTES / 1000000" | bc) MB in 5000 files; disk $((DISK_BYTES >> 20)) MiB (60 % random, a loop device held open: read from memory); median of $RUNS runs, wall time of each command"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (other work on the machine slows both sides)"
echo "restic $(restic version | cut -d' ' -f2) runs on the host into a repository on the control node over SFTP; holiday's repository is on the control node too"
line "tree, first backup" "$H1" "$R1" "1.5x"
printf '      %-26s %6.2f s (%.0f MB/s)\n' "holiday's data path" "$(echo "$(median "${h1p[@]}") / 1000000000" | bc -l)" "$(mb "$TREE_BYTES" "$(echo "$(median "${h1p[@]}") / 1000000000" | bc -l)")"
bytes holiday "$(medpair "${h1b[@]}")" "$(median "${h1w[@]}")"
bytes restic "$(medpair "${r1b[@]}")"
line "tree, unchanged second backup" "$H2" "$R2" "3x"
printf '      %-26s %6.2f s\n' "holiday's data path" "$(echo "$(median "${h2p[@]}") / 1000000000" | bc -l)"
bytes holiday "$(medpair "${h2b[@]}")" "$(median "${h2w[@]}")"
bytes restic "$(medpair "${r2b[@]}")"
printf '  %-30s holiday %7.1f MB/s  restic --stdin through ssh %7.1f MB/s  holiday/restic %5.2fx  (goal: holiday >= 400 MB/s)\n' \
	"disk image, first backup" "$(mb "$DISK_BYTES" "$HD")" "$(mb "$DISK_BYTES" "$RD")" "$(echo "$RD / $HD" | bc -l)"
printf '      %-26s %6.2f s (%.0f MB/s)\n' "holiday's data path" "$(echo "$(median "${hdp[@]}") / 1000000000" | bc -l)" "$(mb "$DISK_BYTES" "$(echo "$(median "${hdp[@]}") / 1000000000" | bc -l)")"
printf '      %-26s %6.2f CPU-s per GiB of disk (user + system; the load average does not change it much)\n' "holiday, control node" "$(echo "$(median "${hdc[@]}") * 1073741824 / $DISK_BYTES" | bc -l)"
bytes holiday "$(medpair "${hdb[@]}")" "$(median "${hdw[@]}")"
bytes "restic (cat through ssh)" "$(medpair "${rdb[@]}")"
