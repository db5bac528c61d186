#!/bin/bash
# make bench-fleet-plan: `holiday plan` over the lab's 10 light hosts against
# the equivalent read-only Ansible run (bench/ansible/plan.yml: gather_facts,
# service_facts, iptables listing; pipelining, ControlPersist), at forks=5
# and forks=10, cold and warm, printed side by side as ratios.
#
#   cold: holiday's agent directory cleared on every host (first upload);
#         Ansible's ControlPersist masters closed (new connections).
#   warm: holiday's agent cached (its SSH connections are new every run:
#         holiday keeps none between runs); Ansible's masters still open.
#
# Needs the lab with LIGHT_HOSTS>=10 (make lab-up) and Debian's ansible.
# It clears /var/lib/holiday/agent on light1..light10 (holiday's own
# directory, nothing else) and takes the lab's per-host locks exclusively.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-fleet-plan
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup
write_plan "defaults: {backup: none, stop: [redis-server, nginx], firewall: {allow: [{tcp: 22}], ipv6: drop-all}}"

declare -A R
for forks in 5 10; do
	hc=() hw=() ac=() aw=()
	for _ in $(seq "$RUNS"); do
		clear_agents
		hc+=("$(secs "$W/holiday" plan -f "$W/plan.yaml" -p "$forks" --json)")
		grep -q '"uploaded": true' "$W/out" || die "cold run did not upload"
		hw+=("$(secs "$W/holiday" plan -f "$W/plan.yaml" -p "$forks" --json)")
		grep -q '"uploaded": true' "$W/out" && die "warm run uploaded"
		ssh_stop
		ac+=("$(secs ansible-playbook -i "$W/inventory.ini" -f "$forks" bench/ansible/plan.yml)")
		aw+=("$(secs ansible-playbook -i "$W/inventory.ini" -f "$forks" bench/ansible/plan.yml)")
	done
	R[hc$forks]=$(median "${hc[@]}") R[hw$forks]=$(median "${hw[@]}")
	R[ac$forks]=$(median "${ac[@]}") R[aw$forks]=$(median "${aw[@]}")
done

echo
echo "holiday plan vs. Ansible (read-only), $N light hosts, median of $RUNS runs, seconds"
printf '%-16s %10s %10s %10s\n' "" holiday ansible "ansible/holiday"
for forks in 5 10; do
	for k in c w; do
		name=cold; [ $k = w ] && name=warm
		h=${R[h$k$forks]} a=${R[a$k$forks]}
		printf '%-16s %10.2f %10.2f %14.1fx\n' "forks=$forks $name" "$h" "$a" "$(echo "$a / $h" | bc -l)"
	done
done
