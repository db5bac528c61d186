#!/bin/bash
# bench/backup-pg.sh (part of `make bench-backup`): a PostgreSQL dump
# through holiday against `pg_dump -Fc` of the same database into
# /dev/null on the host itself, median of RUNS (default 3), as a ratio
# (goal: holiday at most 1.1x pg_dump's time).
#
# The database: hbbench on sys2 (PostgreSQL runs there), 2 million rows
# (~440 MB on disk, a 135 MB dump) made for the bench and dropped at the
# end. holiday: `holiday backup` of sys2 with only that source, into a
# fresh repository on the control node (made before the timing starts:
# creating a repository is no part of a dump); its wall time includes
# the SSH connection, the repository's opening and the read-back of what
# it stored; the dump is verified on the host as it is chunked
# (pg_restore --list and a read of every block), so the dump's own data
# path (the agent's pg_dump streamed, chunked, sent and stored) is
# printed beside. Bytes crossing SSH: sys2's interface counters around
# each run.
#
# A build without database dumps (backup/dbdump) prints SKIPPED.
# HOLIDAY_BIN=path benches a given build.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-backup-pg
# shellcheck source=bench/lib.sh
. bench/lib.sh
lab_env
RUNS=${RUNS:-3}
HOST=${PG_HOST:-sys2}
ROWS=${PG_ROWS:-2000000}
ADDR=$(tr ' ' '\n' <<<"$LAB_HOSTS" | sed -n "s/^$HOST=//p")
[ -n "$ADDR" ] || die "the lab has no $HOST"
W=$(mktemp -d /tmp/holiday-bench.XXXXXX)
mkdir -p "$LAB_DIR/locks"
exec {lockfd}>"$LAB_DIR/locks/$HOST"
flock "$lockfd"
psql_host() { on_host "$ADDR" "cd / && runuser -u postgres -- psql -qAt -v ON_ERROR_STOP=1 $*"; }
trap 'psql_host -c "\"DROP DATABASE IF EXISTS hbbench\"" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
build_holiday

echo "$BENCH: making hbbench on $HOST ($ROWS rows)" >&2
psql_host -c '"DROP DATABASE IF EXISTS hbbench"' -c '"CREATE DATABASE hbbench"' >/dev/null
psql_host -d hbbench -c "\"CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS ref, md5((g * 7)::text) || md5((g * 13)::text) AS note,
	(g % 1000)::numeric / 7 AS amount, timestamp '2026-01-01' + g * interval '1 second' AS at FROM generate_series(1, $ROWS) g\"" \
	-c '"CREATE INDEX ON orders (ref)"' >/dev/null
DB_BYTES=$(psql_host -d hbbench -c '"SELECT pg_database_size(current_database())"')

echo bench-backup-password >"$W/pw"
# plan [COMPRESS]: the plan dumping hbbench (pg_dump's --compress level
# when given; holiday's default is 0, the repository compresses)
plan() {
	cat >"$W/plan.yaml" <<EOF
version: 1
name: $BENCH
management: [10.213.0.0/24]
repository: {url: $W/repo, password_file: $W/pw}
ssh: {user: ops, identity: $LAB_SSH_KEY, known_hosts: $LAB_KNOWN_HOSTS, become: sudo}
defaults: {backup: none}
hosts:
  - name: $HOST
    address: $ADDR
    backup: [{postgres: {databases: [hbbench]${1:+, compress: $1}}}]
EOF
}
plan
counters() { ip netns exec "$LAB_NETNS_PREFIX$HOST" cat /sys/class/net/eth0/statistics/tx_bytes /sys/class/net/eth0/statistics/rx_bytes | paste -sd' '; }
crossed() {
	local b a
	read -r -a b <<<"$1"
	read -r -a a <<<"$(counters)"
	echo "$((a[0] - b[0])) $((a[1] - b[1]))"
}
# new_repo: a fresh repository for the next run, made before its timing
# starts (creating a repository, ~0.7 s of key calibration here, is no
# part of a dump through holiday; bench/backup.sh does the same)
new_repo() {
	rm -rf "$W/repo" "$W/state"
	"$W/holiday" repo init --repo "$W/repo" --password-file "$W/pw" >/dev/null 2>&1
}
holiday_dump() { "$W/holiday" backup -f "$W/plan.yaml" --state-dir "$W/state" --journal-key "$W/journal.key" --json; }
pg_dump_host() { on_host "$ADDR" "cd / && runuser -u postgres -- pg_dump -Fc $* hbbench >/dev/null"; }
# sent: the bytes the host sent in the last --json result (first snapshot)
sent() { grep -o '"bytes_sent": [0-9]*' "$W/out" | head -1 | awk '{print $2}'; }

# untimed: the agent's upload, and whether this build dumps at all
new_repo
if ! holiday_dump >"$W/out" 2>&1; then
	if grep -q "cannot dump databases" "$W/out"; then
		echo "  postgres dump                  SKIPPED: this build has no database dumps (backup/dbdump)"
		exit 0
	fi
	die "holiday backup with the dump failed: $(cat "$W/out")"
fi
pg_dump_host

hw=() hp=() hb=() pw=() pb=() pz=()
for run in $(seq "$RUNS"); do
	echo "$BENCH: run $run of $RUNS" >&2
	new_repo
	c=$(counters)
	hw+=("$(secs holiday_dump)")
	grep -q '"status": "done"' "$W/out" || die "holiday backup did not finish: $(cat "$W/out")"
	hb+=("$(crossed "$c")")
	hp+=("$(grep -o '"elapsed_ns": [0-9]*' "$W/out" | head -1 | awk '{print $2}')")
	c=$(counters)
	pw+=("$(secs pg_dump_host)")
	pb+=("$(crossed "$c")")
	pz+=("$(secs pg_dump_host --compress=0)")
done
# What a second night stores: the same (unchanged) database dumped again
# into the repository, holiday's way (uncompressed dump, compressed and
# deduplicated by the repository) and with pg_dump compressing on the
# host (compress: 6, pg_dump's default).
second=()
for level in "" 6; do
	plan $level
	new_repo
	holiday_dump >"$W/out"
	first=$(sent)
	holiday_dump >"$W/out"
	grep -q '"status": "done"' "$W/out" || die "holiday backup did not finish: $(cat "$W/out")"
	second+=("$first $(sent) $(du -sb "$W/repo" | cut -f1)")
done
H=$(median "${hw[@]}") P=$(median "${pw[@]}") PZ=$(median "${pz[@]}") HP=$(echo "$(median "${hp[@]}") / 1000000000" | bc -l)
mbs() { local s r; read -r s r <<<"$1"; printf '%.1f MB sent by the host, %.2f MB received' "$(echo "$s / 1000000" | bc -l)" "$(echo "$r / 1000000" | bc -l)"; }
echo
echo "$HOST: database hbbench, $((DB_BYTES / 1000000)) MB on disk; median of $RUNS runs"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (other work on the machine slows both sides)"
printf '  %-30s holiday %7.2f s   pg_dump -Fc >/dev/null %7.2f s   holiday/pg_dump %5.2fx  (goal: <= 1.1x)\n' "postgres dump" "$H" "$P" "$(echo "$H / $P" | bc -l)"
printf '      %-26s %6.2f s, %5.2fx pg_dump (verified in-stream; the rest: SSH, repository open, read-back)\n' "holiday's data path" "$HP" "$(echo "$HP / $P" | bc -l)"
printf '      %-26s %6.2f s, holiday/pg_dump --compress=0 %5.2fx (the dump holiday runs: the repository compresses)\n' "pg_dump -Fc --compress=0" "$PZ" "$(echo "$H / $PZ" | bc -l)"
printf '      %-26s %s\n' holiday "$(mbs "${hb[$((${#hb[@]} / 2))]}")" "pg_dump" "$(mbs "${pb[$((${#pb[@]} / 2))]}")"
# second BYTES-FIRST BYTES-SECOND REPO-BYTES
for i in 0 1; do
	read -r f n r <<<"${second[$i]}"
	[ "$i" = 0 ] && what="holiday (compress: 0)" || what="pg_dump --compress=6"
	printf '      %-26s first night sends %6.1f MB, the unchanged second %6.1f MB; repository after both %6.1f MB\n' "$what" \
		"$(echo "$f / 1000000" | bc -l)" "$(echo "$n / 1000000" | bc -l)" "$(echo "$r / 1000000" | bc -l)"
done
