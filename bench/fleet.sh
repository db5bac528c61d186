#!/bin/bash
# make bench-fleet: `holiday lockdown` + `holiday restore` over the lab's 10
# light hosts (stop and disable nginx and redis-server on each, then put
# them back) against the equivalent Ansible playbooks
# (bench/ansible/lockdown.yml and restore.yml: service module, stop +
# disable, then start + enable; gather_facts off, pipelining,
# ControlPersist), at forks=5 and forks=10 (holiday --parallel 5/10),
# cold and warm, printed side by side as ratios.
#
# The same harness as bench/fleet-plan.sh (made by copying its helpers:
# that script is not sourceable):
#   cold: holiday's agent directory cleared on every host (first upload);
#         Ansible's ControlPersist masters closed (new connections).
#   warm: holiday's agent cached (its SSH connections are new every run);
#         Ansible's masters still open.
#
# Needs the lab with LIGHT_HOSTS>=10 (make lab-up) and Debian's ansible.
# Takes the lab's per-host locks exclusively; leaves every host with both
# services running and enabled, and checks their rc links are as before.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV=${HOLIDAY_LAB_ENV:-${HOLIDAY_LAB_DIR:-/var/tmp/holiday-lab}/env}
[ -r "$ENV" ] || { echo "bench-fleet: lab not up ($ENV missing): make lab-up" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV"
command -v ansible-playbook >/dev/null || { echo "bench-fleet: ansible-playbook missing: apt-get install ansible" >&2; exit 1; }
RUNS=${RUNS:-3}
N=${HOSTS:-10}

W=$(mktemp -d /tmp/holiday-bench.XXXXXX)
trap 'ssh_stop; rm -rf "$W"' EXIT
ssh_stop() { for s in "$W"/cp/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null || true; done; }

hosts=()
for i in $(seq 1 "$N"); do
	a=$(tr ' ' '\n' <<<"$LAB_HOSTS" | sed -n "s/^light$i=//p")
	[ -n "$a" ] || { echo "bench-fleet: the lab has no light$i (LIGHT_HOSTS=$N make lab-up)" >&2; exit 1; }
	hosts+=("light$i=$a")
done

mkdir -p "$LAB_DIR/locks"
for h in "${hosts[@]}"; do
	exec {fd}>"$LAB_DIR/locks/${h%%=*}"
	flock "$fd"
done

if [ -n "${HOLIDAY_BIN:-}" ]; then
	cp "$HOLIDAY_BIN" "$W/holiday"
else
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=bench" -o "$W/holiday" ./cmd/holiday
fi

{
	echo "version: 1"
	echo "name: bench-fleet"
	echo "management: [10.213.0.0/24]"
	echo "ssh: {user: ops, identity: $LAB_SSH_KEY, known_hosts: $LAB_KNOWN_HOSTS, become: sudo}"
	echo "defaults: {backup: none, stop: [nginx, redis-server]}"
	echo "hosts:"
	for h in "${hosts[@]}"; do echo "  - {name: ${h%%=*}, address: ${h#*=}}"; done
} >"$W/plan.yaml"
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

on_all() {
	for h in "${hosts[@]}"; do
		ssh -F /dev/null -n -i "$LAB_SSH_KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$LAB_KNOWN_HOSTS" \
			-o StrictHostKeyChecking=yes -o BatchMode=yes root@"${h#*=}" "$1" | sed "s/^/${h%%=*} /" &
	done
	wait
}
clear_agents() { on_all 'rm -rf /var/lib/holiday/agent' >/dev/null; }
state() { on_all 'ls -l /etc/rc?.d | grep -E "nginx|redis" | awk "{print \$9, \$11}"; for s in nginx redis-server; do service $s status >/dev/null 2>&1 && echo $s running || echo $s stopped; done' | sort; }

secs() {
	local s e
	s=$(date +%s.%N)
	"$@" >"$W/out" 2>&1 || { echo "bench-fleet: failed: $*" >&2; tail -20 "$W/out" >&2; exit 1; }
	e=$(date +%s.%N)
	echo "$e - $s" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
H() { "$W/holiday" "$1" -f "$W/plan.yaml" --state-dir "$W/state" --journal-key "$W/journal.key" --parallel "$forks" --json; }
A() { ansible-playbook -i "$W/inventory.ini" -f "$forks" "bench/ansible/$1.yml"; }

before=$(state)
grep -q stopped <<<"$before" && { echo "bench-fleet: a service is stopped before the bench:" >&2; grep stopped <<<"$before" >&2; exit 1; }

declare -A R
for forks in 5 10; do
	for k in hcl hcr hwl hwr acl acr awl awr; do eval "$k=()"; done
	for _ in $(seq "$RUNS"); do
		clear_agents
		hcl+=("$(secs H lockdown)")
		grep -q '"status": "done"' "$W/out" || { echo "bench-fleet: holiday lockdown did not finish" >&2; exit 1; }
		hcr+=("$(secs H restore)")
		hwl+=("$(secs H lockdown)")
		hwr+=("$(secs H restore)")
		ssh_stop
		acl+=("$(secs A lockdown)")
		acr+=("$(secs A restore)")
		awl+=("$(secs A lockdown)")
		awr+=("$(secs A restore)")
	done
	for k in hcl hcr hwl hwr acl acr awl awr; do
		eval "R[$k$forks]=\$(median \"\${$k[@]}\")"
	done
done

after=$(state)
if [ "$before" != "$after" ]; then
	echo "bench-fleet: WARNING: the hosts' rc links or services differ from before the bench:" >&2
	diff <(echo "$before") <(echo "$after") >&2 || true
fi

echo
echo "holiday lockdown+restore vs. Ansible (service stop+disable, start+enable), $N light hosts × 2 services, median of $RUNS runs, seconds"
printf '%-16s %24s %24s %16s\n' "" "holiday lock+rest=total" "ansible lock+rest=total" "ansible/holiday"
for forks in 5 10; do
	for k in c w; do
		name=cold; [ $k = w ] && name=warm
		hl=${R[h${k}l$forks]} hr=${R[h${k}r$forks]} al=${R[a${k}l$forks]} ar=${R[a${k}r$forks]}
		ht=$(echo "$hl + $hr" | bc -l) at=$(echo "$al + $ar" | bc -l)
		printf '%-16s %6.2f + %5.2f = %6.2f %6.2f + %5.2f = %6.2f %15.1fx\n' "forks=$forks $name" "$hl" "$hr" "$ht" "$al" "$ar" "$at" "$(echo "$at / $ht" | bc -l)"
	done
done
