#!/bin/bash
# bench/check.sh (`make bench-check`): holiday check next to Debian's
# rkhunter and chkrootkit on the same lab host (sys1) and the same planted
# compromise (lab/plant.sh). For each tool, on the clean host and then with
# the plants in place: wall time, alarms, and which planted kinds its output
# names. A "false alarm" is an alarm on the clean host.
#
#   - holiday: baseline, then `holiday check` (fresh agent each time; the
#     time is the median of RUNS warm runs) and `holiday evidence`.
#   - chkrootkit: inside the host if the lab's tree has it; otherwise from
#     this machine with its root-dir option (-r /proc/PID/root of the
#     host): file tests see the host's root, process and interface tests
#     see this machine (said in the output).
#   - rkhunter --check --sk: only inside the host (it has no root-dir
#     option); skipped with the reason when the lab's tree lacks it
#     (add rkhunter and chkrootkit to lab/rootfs.packages and rebuild).
#
# Takes the lab's lock of the host; plant.sh undo puts it back.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-check
# shellcheck source=bench/lib.sh
. bench/lib.sh
lab_env
RUNS=${RUNS:-3}
HOST=${HOST:-sys1}
ADDR=$(tr ' ' '\n' <<<"$LAB_HOSTS" | sed -n "s/^$HOST=//p")
[ -n "$ADDR" ] || die "the lab has no $HOST"
W=$(mktemp -d /tmp/holiday-bench.XXXXXX)
mkdir -p "$LAB_DIR/locks"
exec {lockfd}>"$LAB_DIR/locks/$HOST"
flock "$lockfd"
trap 'on_host "$ADDR" bash -s undo <lab/plant.sh || true; rm -rf "$W"' EXIT
build_holiday
"$W/holiday" repo init -r "$W/repo" --password-file <(echo bench) >/dev/null 2>&1 || true
echo bench >"$W/pass"
cat >"$W/plan.yaml" <<PLAN
version: 1
name: $BENCH
management: [10.213.0.0/24]
repository: {url: $W/repo, password_file: $W/pass}
ssh: {user: ops, identity: $LAB_SSH_KEY, known_hosts: $LAB_KNOWN_HOSTS, become: sudo}
hosts:
  - {name: $HOST, address: $ADDR, backup: none, web_roots: [/var/www]}
PLAN
[ -d "$W/repo" ] || "$W/holiday" repo init -r "$W/repo" --password-file "$W/pass" >/dev/null 2>&1

# The planted kinds and a token each tool's output must contain to count
# as naming it.
KINDS=(uid0-account:toor group-member:guest authorized-key:planted@evil sudoers:90-planted cron:cron.d/updater
	at-job:a00001021fa2b1 systemd-unit:dbus-helper rc-script:netfix profile-script:zz-update pam:pam.d/sshd
	ld.so.preload:ld.so.preload suid:/var/tmp/.bash capability:/var/tmp/.ping webshell:.cache.php
	trojaned-ps:/usr/bin/ps trojaned-ss:/usr/bin/ss dev-shm-process:kworkerd deleted-exe:upd memfd:memfd
	listener:31337 login-after-failures:203.0.113.77 wtmp-truncated:wtmp)

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
named() { # named FILE: how many planted kinds FILE's text names
	local n=0 k
	for k in "${KINDS[@]}"; do grep -qF -- "${k#*:}" "$1" && n=$((n + 1)); done
	echo $n
}

holiday_check() { # holiday_check OUT: median wall time of RUNS warm checks
	local t=() i s
	"$W/holiday" check -f "$W/plan.yaml" --json >"$1" 2>/dev/null || true # warm-up
	for i in $(seq "$RUNS"); do
		s=$(now)
		"$W/holiday" check -f "$W/plan.yaml" --json >"$1" 2>/dev/null || true
		t+=("$(since "$s")")
	done
	median "${t[@]}"
}

hostpid=$(ip netns pids "$LAB_NETNS_PREFIX$HOST" | head -1)
hostroot=/proc/$hostpid/root
in_host() { on_host "$ADDR" "command -v $1" >/dev/null 2>&1; }

peer() { # peer NAME OUT: run one peer, print its wall time; its output in OUT
	local s
	s=$(now)
	case $1 in
	chkrootkit)
		if in_host chkrootkit; then on_host "$ADDR" 'chkrootkit -q' >"$2" 2>&1 || true
		elif command -v chkrootkit >/dev/null; then chkrootkit -q -r "$hostroot" >"$2" 2>&1 || true
		else echo "chkrootkit: not installed (apt-get install chkrootkit)" >"$2"; fi ;;
	rkhunter)
		if in_host rkhunter; then on_host "$ADDR" 'rkhunter --check --sk --nocolors --report-warnings-only' >"$2" 2>&1 || true
		else echo "SKIPPED: rkhunter is not in the lab's root tree (add it to lab/rootfs.packages; it has no root-dir option)" >"$2"; fi ;;
	esac
	since "$s"
}
alarms() { # alarms NAME OUT: the peer's alarm lines
	case $1 in
	chkrootkit) grep -cE 'INFECTED|Vulnerable|suspicious|Warning|PACKET SNIFFER|hidden|WARNING' "$2" || true ;;
	rkhunter) grep -c 'Warning' "$2" || true ;;
	esac
}

on_host "$ADDR" bash -s undo <lab/plant.sh
"$W/holiday" baseline -f "$W/plan.yaml" >/dev/null

echo "$BENCH: clean $HOST"
t_clean=$(holiday_check "$W/clean.json")
fa_h=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for h in d for f in (h.get("result") or {}).get("findings") or [] if f["class"]!="churn"))' "$W/clean.json")
declare -A pt pfa
for p in chkrootkit rkhunter; do
	pt[$p.clean]=$(peer $p "$W/$p.clean")
	pfa[$p]=$(alarms $p "$W/$p.clean")
done

echo "$BENCH: planted $HOST (${#KINDS[@]} kinds)"
on_host "$ADDR" bash -s plant <lab/plant.sh
t_plant=$(holiday_check "$W/planted.json")
found_h=$(named "$W/planted.json")
s=$(now)
"$W/holiday" evidence -f "$W/plan.yaml" "$HOST" >"$W/evidence.out"
t_ev=$(since "$s")
declare -A pf
for p in chkrootkit rkhunter; do
	pt[$p.plant]=$(peer $p "$W/$p.plant")
	pf[$p]=$(named "$W/$p.plant")
done

echo
printf '%-22s %12s %12s %10s %14s %10s\n' tool "clean time" "plant time" "false al." "planted named" "vs holiday"
printf '%-22s %11.2fs %11.2fs %10s %11s/%d %10s\n' "holiday check" "$t_clean" "$t_plant" "$fa_h" "$found_h" "${#KINDS[@]}" "1.00x"
for p in chkrootkit rkhunter; do
	if grep -q '^SKIPPED' "$W/$p.clean"; then
		printf '%-22s %s\n' "$p" "$(head -1 "$W/$p.clean")"
		continue
	fi
	how="inside $HOST"; in_host $p || how="-r host root"
	printf '%-22s %11.2fs %11.2fs %10s %11s/%d %9.2fx\n' "$p ($how)" "${pt[$p.clean]}" "${pt[$p.plant]}" "${pfa[$p]}" "${pf[$p]}" "${#KINDS[@]}" \
		"$(echo "${pt[$p.plant]} / $t_plant" | bc -l)"
done
printf '%-22s %11.2fs\n' "holiday evidence" "$t_ev"
echo
echo "Goals: every planted kind named, 0 false alarms, check <= 5 s warm, evidence <= 30 s."
for p in chkrootkit rkhunter; do
	echo "--- $p on the planted host (alarm lines):"
	grep -E 'INFECTED|Vulnerable|suspicious|Warning|WARNING|SKIPPED|not installed|hidden' "$W/$p.plant" | head -20 || true
done
