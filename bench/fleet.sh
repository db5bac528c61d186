#!/bin/bash
# make bench-fleet: `holiday lockdown` + `holiday restore` over the lab's 10
# light hosts (stop and disable nginx and redis-server on each, then put
# them back) against the equivalent Ansible playbooks
# (bench/ansible/lockdown.yml and restore.yml: service module, stop +
# disable, then start + enable; gather_facts off, pipelining,
# ControlPersist), at forks=5 and forks=10 (holiday --parallel 5/10),
# cold and warm, printed side by side as ratios.
#
# The same harness as bench/fleet-plan.sh (bench/lib.sh):
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
BENCH=bench-fleet
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup
write_plan "defaults: {backup: none, stop: [nginx, redis-server]}"

state() { on_all 'ls -l /etc/rc?.d | grep -E "nginx|redis" | awk "{print \$9, \$11}"; for s in nginx redis-server; do service $s status >/dev/null 2>&1 && echo $s running || echo $s stopped; done' | sort; }
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
		grep -q '"status": "done"' "$W/out" || die "holiday lockdown did not finish"
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
