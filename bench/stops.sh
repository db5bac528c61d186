#!/bin/bash
# bench/stops.sh (part of `make bench-fleet`): one systemd host that stops
# nine units — services, a socket-activated service, a socket, timers, with
# stop times from ~0 to ~1 s (bench/stops-units.sh, installed into the lab's
# sys1 for the bench and removed afterwards). Prints, in one run:
#
#   - each unit's own stop time, alone (`systemctl stop X` timed on the
#     host, then started again; median of RUNS), and the slowest of them;
#   - holiday's lockdown and restore of that host (the host's own time from
#     --json, and the command's wall time; median of RUNS warm runs after an
#     untimed one that uploads the agent);
#   - the ratio lockdown / slowest unit (goal: at most 1.5).
#
# Takes the lab's lock of sys1; leaves sys1's units exactly as they were
# (checked: `systemctl list-units --all` and `list-unit-files` before the
# units are installed and after they are removed).
#
# HOST=sys2 picks the other systemd host; BENCH_SLOW=2 makes the slowest
# unit take 2 s; HOLIDAY_BIN=path benches a given build (e.g. main's).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-stops
# shellcheck source=bench/lib.sh
. bench/lib.sh
lab_env
RUNS=${RUNS:-3}
HOST=${HOST:-sys1}
ADDR=$(tr ' ' '\n' <<<"$LAB_HOSTS" | sed -n "s/^$HOST=//p")
[ -n "$ADDR" ] || die "the lab has no $HOST"
grep -q "$HOST=systemd" <<<"$LAB_HOST_KINDS" || die "$HOST is not a systemd host"
W=$(mktemp -d /tmp/holiday-bench.XXXXXX)
mkdir -p "$LAB_DIR/locks"
exec {lockfd}>"$LAB_DIR/locks/$HOST"
flock "$lockfd"
build_holiday

units() { on_host "$ADDR" bash -s "$@" <bench/stops-units.sh; }
snap() { on_host "$ADDR" 'systemctl list-units --all --no-legend --plain --full --no-pager | grep -vE "^(session-[0-9]+\.scope|user@[0-9]+\.service|user-[0-9]+\.slice|user-runtime-dir@[0-9]+\.service|lab-echo@.*\.service|run-.*\.mount) " | awk "{print \$1,\$2,\$3,\$4}"; echo ==; systemctl list-unit-files --no-legend --plain --full --no-pager'; }

before=$(snap)
trap 'units remove >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
units install
read -r -a names <<<"$(units names)"
hosts=("$HOST=$ADDR")
write_plan "defaults: {backup: none, stop: [$(IFS=,; echo "${names[*]}" | sed 's/,/, /g')]}"

# Each unit alone.
declare -A alone
for u in "${names[@]}"; do
	ts=()
	for _ in $(seq "$RUNS"); do
		ts+=("$(on_host "$ADDR" "s=\$(date +%s.%N); systemctl stop $u 2>/dev/null; e=\$(date +%s.%N); awk \"BEGIN{print \$e - \$s}\"")")
		units running
	done
	alone[$u]=$(median "${ts[@]}")
done
slowest=
for u in "${names[@]}"; do
	if [ -z "$slowest" ] || [ "$(echo "${alone[$u]} > ${alone[$slowest]}" | bc -l)" = 1 ]; then slowest=$u; fi
done

H() { "$W/holiday" "$1" -f "$W/plan.yaml" --state-dir "$W/state" --journal-key "$W/journal.key" --json; }
# hostsecs: the host's own elapsed time in the last --json result.
hostsecs() { grep -o '"elapsed_ns": [0-9]*' "$W/out" | head -1 | awk '{printf "%.3f\n", $2/1e9}'; }
on_host "$ADDR" 'rm -rf /var/lib/holiday/agent'
secs H lockdown >/dev/null
grep -q '"status": "done"' "$W/out" || die "holiday lockdown did not finish: $(cat "$W/out")"
secs H restore >/dev/null
grep -q '"status": "done"' "$W/out" || die "holiday restore did not finish: $(cat "$W/out")"
lw=() lh=() rw=() rh=()
for _ in $(seq "$RUNS"); do
	lw+=("$(secs H lockdown)")
	grep -q '"status": "done"' "$W/out" || die "holiday lockdown did not finish: $(cat "$W/out")"
	lh+=("$(hostsecs)")
	running=$(on_host "$ADDR" "systemctl is-active ${names[*]} bench-ingest.socket bench-sidecar" | grep -cx active || true)
	[ "$running" = 0 ] || die "$running of the units still active during the break"
	rw+=("$(secs H restore)")
	grep -q '"status": "done"' "$W/out" || die "holiday restore did not finish: $(cat "$W/out")"
	rh+=("$(hostsecs)")
done

units remove
after=$(snap)
if [ "$before" != "$after" ]; then
	echo "$BENCH: WARNING: $HOST's units differ from before the bench:" >&2
	diff <(echo "$before") <(echo "$after") >&2 || true
fi

L=$(median "${lh[@]}") R=$(median "${rh[@]}") LW=$(median "${lw[@]}") RW=$(median "${rw[@]}")
echo
echo "one host, ${#names[@]} units to stop ($HOST, systemd), median of $RUNS runs, seconds"
for u in "${names[@]}"; do printf '  %-22s stop alone %6.3f\n' "$u" "${alone[$u]}"; done
printf '%-24s %6.3f (%s)\n' "slowest unit alone" "${alone[$slowest]}" "$slowest"
printf '%-24s %6.3f host, %6.3f wall (warm agent)\n' "holiday lockdown" "$L" "$LW"
printf '%-24s %6.3f host, %6.3f wall\n' "holiday restore" "$R" "$RW"
printf '%-24s %6.2fx host, %5.2fx wall (goal: at most 1.5x)\n' "lockdown/slowest" "$(echo "$L / ${alone[$slowest]}" | bc -l)" "$(echo "$LW / ${alone[$slowest]}" | bc -l)"
