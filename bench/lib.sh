#!/bin/bash
# bench/lib.sh: the harness the fleet benchmarks share (bench/fleet.sh,
# bench/fleet-plan.sh): the lab's light hosts, their locks, a holiday
# build, an Ansible inventory with ControlPersist, timing and medians.
#
# Source it after `set -euo pipefail` and `cd` to the repository root,
# with BENCH set to the script's name (it starts every message):
#
#   BENCH=bench-fleet-plan
#   . bench/lib.sh
#   bench_setup            # lab env, RUNS, N, $W, hosts, locks, $W/holiday, inventory
#   write_plan "defaults: {…}"
#
# Sourcing only defines functions; bench_setup does the work.

# die MSG: print "$BENCH: MSG" on stderr and exit 1.
die() { echo "$BENCH: $*" >&2; exit 1; }

# bench_setup: everything both benchmarks do before their first run.
# Sets RUNS (default 3), N (HOSTS, default 10), W (a work directory removed
# on exit, with ssh_stop), hosts (light1=ADDR … lightN=ADDR, locked
# exclusively in the lab's cooperative locks), builds (or copies
# $HOLIDAY_BIN to) $W/holiday, writes $W/inventory.ini and points Ansible
# at bench/ansible/ansible.cfg.
bench_setup() {
	lab_env
	command -v ansible-playbook >/dev/null || die "ansible-playbook missing: apt-get install ansible"
	RUNS=${RUNS:-3}
	N=${HOSTS:-10}
	W=$(mktemp -d /tmp/holiday-bench.XXXXXX)
	trap 'ssh_stop; rm -rf "$W"' EXIT
	light_hosts
	lock_hosts
	build_holiday
	write_inventory
}

# lab_env: load the lab's env file.
lab_env() {
	ENV=${HOLIDAY_LAB_ENV:-${HOLIDAY_LAB_DIR:-/var/tmp/holiday-lab}/env}
	[ -r "$ENV" ] || die "lab not up ($ENV missing): make lab-up"
	# shellcheck disable=SC1090
	. "$ENV"
}

# ssh_stop: close Ansible's ControlPersist masters (the next run is cold).
ssh_stop() { for s in "$W"/cp/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null || true; done; }

# light_hosts: hosts=(light1=ADDR … lightN=ADDR) from the lab's LAB_HOSTS.
light_hosts() {
	local i a have
	hosts=()
	have=$(tr ' ' '\n' <<<"$LAB_HOSTS" | grep -c '^light[0-9]*=' || true)
	[ "$have" -ge "$N" ] ||
		die "HOSTS=$N asks for $N light hosts, the lab has $have: LIGHT_HOSTS=$N make lab-up (the coordinator's lab), or a smaller HOSTS"
	for i in $(seq 1 "$N"); do
		a=$(tr ' ' '\n' <<<"$LAB_HOSTS" | sed -n "s/^light$i=//p")
		[ -n "$a" ] || die "the lab has no light$i (LIGHT_HOSTS=$N make lab-up)"
		hosts+=("light$i=$a")
	done
}

# lock_hosts: take the lab's cooperative per-host locks exclusively, held
# until the script exits (cold runs clear the agent directory).
lock_hosts() {
	local h fd
	mkdir -p "$LAB_DIR/locks"
	for h in "${hosts[@]}"; do
		exec {fd}>"$LAB_DIR/locks/${h%%=*}"
		flock "$fd"
	done
}

# build_holiday: $W/holiday, a static build of this tree, or a copy of
# $HOLIDAY_BIN when set.
build_holiday() {
	if [ -n "${HOLIDAY_BIN:-}" ]; then
		cp "$HOLIDAY_BIN" "$W/holiday"
	else
		CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=bench" -o "$W/holiday" ./cmd/holiday
	fi
}

# write_plan DEFAULTS: $W/plan.yaml named $BENCH over the hosts, with the
# given defaults line (e.g. "defaults: {backup: none, stop: [nginx]}").
write_plan() {
	local h
	{
		echo "version: 1"
		echo "name: $BENCH"
		echo "management: [10.213.0.0/24]"
		echo "ssh: {user: ops, identity: $LAB_SSH_KEY, known_hosts: $LAB_KNOWN_HOSTS, become: sudo}"
		echo "$1"
		echo "hosts:"
		for h in "${hosts[@]}"; do echo "  - {name: ${h%%=*}, address: ${h#*=}}"; done
	} >"$W/plan.yaml"
}

# write_inventory: $W/inventory.ini (group light, ControlPersist sockets
# under $W/cp) and the Ansible environment.
write_inventory() {
	local h
	{
		echo "[light]"
		for h in "${hosts[@]}"; do echo "${h%%=*} ansible_host=${h#*=}"; done
		echo "[light:vars]"
		echo "ansible_user=ops"
		echo "ansible_ssh_private_key_file=$LAB_SSH_KEY"
		echo "ansible_ssh_common_args=-o UserKnownHostsFile=$LAB_KNOWN_HOSTS -o ControlPath=$W/cp/%C"
	} >"$W/inventory.ini"
	mkdir -p "$W/cp"
	export ANSIBLE_CONFIG=$PWD/bench/ansible/ansible.cfg ANSIBLE_LOCAL_TEMP=$W/ansible-tmp
}

# on_host ADDR CMD...: run CMD as root on one lab host (stdin passed on).
on_host() {
	local a=$1
	shift
	ssh -F /dev/null -i "$LAB_SSH_KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$LAB_KNOWN_HOSTS" \
		-o StrictHostKeyChecking=yes -o BatchMode=yes root@"$a" "$@"
}

# on_all CMD: run CMD as root on every host at once, each output line
# prefixed with the host's name.
on_all() {
	local h
	for h in "${hosts[@]}"; do
		ssh -F /dev/null -n -i "$LAB_SSH_KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$LAB_KNOWN_HOSTS" \
			-o StrictHostKeyChecking=yes -o BatchMode=yes root@"${h#*=}" "$1" | sed "s/^/${h%%=*} /" &
	done
	wait
}

# clear_agents: remove holiday's agent directory on every host (the next
# holiday run uploads it again: cold).
clear_agents() { on_all 'rm -rf /var/lib/holiday/agent' >/dev/null; }

# secs CMD...: wall time of CMD in seconds; its output goes to $W/out; the
# command must succeed.
secs() {
	local s e
	# what earlier commands wrote reaches the disk first: neither side's
	# time pays for the other's writeback (the kernel flushes dirty pages
	# ~30 s after they were written, on the same 2 cores)
	sync
	s=$(date +%s.%N)
	"$@" >"$W/out" 2>&1 || { echo "$BENCH: failed: $*" >&2; tail -20 "$W/out" >&2; exit 1; }
	e=$(date +%s.%N)
	echo "$e - $s" | bc -l
}

# median X...: the median (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
