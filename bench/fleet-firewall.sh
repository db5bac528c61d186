#!/bin/bash
# make bench-fleet-firewall: bench/fleet.sh with the lockdown firewall.
# `holiday lockdown` + `holiday restore` over the lab's light hosts (stop
# and disable nginx and redis-server, and the firewall: IPv4 + IPv6, three
# allows, log_drops), against the equivalent Ansible playbooks
# (bench/ansible/fw-lockdown.yml and fw-restore.yml: the service module
# and ansible.builtin.iptables for ipv4 and ipv6, the same HOLIDAY-IN
# chain rule for rule; gather_facts off, pipelining, ControlPersist).
# Cold and warm as in bench/fleet.sh (bench/lib.sh); forks=10 by default
# (FORKS="5 10" for both); RUNS (default 3) runs, medians.
#
# After every restore, of either tool, every host's iptables-save and
# ip6tables-save (both backends, without '#' lines and counters) and its
# services must equal their state before the bench: otherwise the bench
# fails.
#
# HOSTS=N light hosts (default LIGHT_HOSTS, else 10); the lab needs
# LIGHT_HOSTS>=N: LIGHT_HOSTS=50 make lab-up, then
# LIGHT_HOSTS=50 make bench-fleet-firewall for how each tool grows.
# Needs Debian's ansible. Takes the lab's per-host locks exclusively.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-fleet-firewall
HOSTS=${HOSTS:-${LIGHT_HOSTS:-10}}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup
FORKS=${FORKS:-10}

# The plan: lib.sh's write_plan, with IPv6 management and addresses.
{
	echo "version: 1"
	echo "name: $BENCH"
	echo "management: [10.213.0.0/24, \"fd00:213::/64\"]"
	echo "ssh: {user: ops, identity: $LAB_SSH_KEY, known_hosts: $LAB_KNOWN_HOSTS, become: sudo}"
	echo "defaults:"
	echo "  backup: none"
	echo "  stop: [nginx, redis-server]"
	echo "  firewall:"
	echo "    allow:"
	echo "      - {tcp: 22, from: [10.213.0.0/24, \"fd00:213::/64\"]}"
	echo "      - {tcp: 80}"
	echo "      - {tcp: 443}"
	echo "    log_drops: true"
	echo "hosts:"
	for h in "${hosts[@]}"; do
		a6=$(tr ' ' '\n' <<<"$LAB_HOSTS6" | sed -n "s/^${h%%=*}=//p")
		[ -n "$a6" ] || die "no IPv6 address for ${h%%=*} in LAB_HOSTS6"
		echo "  - {name: ${h%%=*}, address: ${h#*=}, address6: \"$a6\"}"
	done
} >"$W/plan.yaml"

# state: per host, the normalized rules of both families and both
# backends, the services' rc links and whether they run.
state() {
	on_all 'for t in iptables ip6tables; do for b in "" -legacy -nft; do
		command -v $t$b-save >/dev/null || continue
		$t$b-save 2>/dev/null | grep -v "^#" | sed -E "s/ \[[0-9]+:[0-9]+\]\$//; s/^(:[A-Z_-]+ [A-Z-]+) .*/\1/; s/^/$t$b /"
	done; done
	ls -l /etc/rc?.d | grep -E "nginx|redis" | awk "{print \$9, \$11}"
	for s in nginx redis-server; do service $s status >/dev/null 2>&1 && echo $s running || echo $s stopped; done' | sort
}
# check WHO: the state equals the one before the bench, or the bench fails.
check() {
	local now
	now=$(state)
	[ "$now" = "$before" ] && return
	echo "$BENCH: FAILED: after $1 the hosts differ from before the bench:" >&2
	diff <(echo "$before") <(echo "$now") >&2 || true
	exit 1
}
# locked: every host has HOLIDAY-IN in both families (the lockdown took).
locked() {
	local n
	n=$(on_all 'iptables-save | grep -c "^-A INPUT -j HOLIDAY-IN"; ip6tables-save | grep -c "^-A INPUT -j HOLIDAY-IN"' | awk '$2 == 1' | wc -l)
	[ "$n" -eq $((2 * N)) ] || die "after $1 only $n of $((2 * N)) families jump to HOLIDAY-IN"
}
# rules WHO: light1's HOLIDAY-IN rules in both families, into $W/rules.WHO.
rules() { on_host "${hosts[0]#*=}" 'iptables-save; ip6tables-save' | grep -E "^-A (HOLIDAY-IN|INPUT)" >"$W/rules.$1"; }
H() { "$W/holiday" "$1" -f "$W/plan.yaml" --state-dir "$W/state" --journal-key "$W/journal.key" --parallel "$forks" --json; }
A() { ansible-playbook -i "$W/inventory.ini" -f "$forks" "bench/ansible/$1.yml"; }

before=$(state)
grep -q stopped <<<"$before" && { echo "$BENCH: a service is stopped before the bench:" >&2; grep stopped <<<"$before" >&2; exit 1; }
grep -q HOLIDAY <<<"$before" && die "a host already has a HOLIDAY chain before the bench"

declare -A R
for forks in $FORKS; do
	for k in hcl hcr hwl hwr acl acr awl awr; do eval "$k=()"; done
	for r in $(seq "$RUNS"); do
		echo "$BENCH: forks=$forks run $r/$RUNS" >&2
		clear_agents
		hcl+=("$(secs H lockdown)")
		grep -q '"status": "done"' "$W/out" || die "holiday lockdown did not finish"
		locked "holiday lockdown"
		rules holiday
		hcr+=("$(secs H restore)")
		check "holiday restore (cold)"
		hwl+=("$(secs H lockdown)")
		locked "holiday lockdown"
		hwr+=("$(secs H restore)")
		check "holiday restore (warm)"
		ssh_stop
		acl+=("$(secs A fw-lockdown)")
		locked "ansible fw-lockdown"
		rules ansible
		acr+=("$(secs A fw-restore)")
		check "ansible fw-restore (cold)"
		awl+=("$(secs A fw-lockdown)")
		locked "ansible fw-lockdown"
		awr+=("$(secs A fw-restore)")
		check "ansible fw-restore (warm)"
	done
	for k in hcl hcr hwl hwr acl acr awl awr; do
		eval "R[$k$forks]=\$(median \"\${$k[@]}\")"
	done
done

echo
if ! diff -q "$W/rules.holiday" "$W/rules.ansible" >/dev/null; then
	echo "the chains differ (${hosts[0]%%=*}; < holiday, > ansible):"
	diff "$W/rules.holiday" "$W/rules.ansible" || true
fi
echo
echo "holiday lockdown+restore vs. Ansible, services + firewall (v4+v6, 3 allows, log_drops), $N light hosts, median of $RUNS runs, seconds; rules identical after every restore"
printf '%-16s %24s %24s %16s\n' "" "holiday lock+rest=total" "ansible lock+rest=total" "ansible/holiday"
for forks in $FORKS; do
	for k in w c; do
		name=cold; [ $k = w ] && name=warm
		hl=${R[h${k}l$forks]} hr=${R[h${k}r$forks]} al=${R[a${k}l$forks]} ar=${R[a${k}r$forks]}
		ht=$(echo "$hl + $hr" | bc -l) at=$(echo "$al + $ar" | bc -l)
		printf '%-16s %6.2f + %5.2f = %6.2f %6.2f + %5.2f = %6.2f %15.1fx\n' "forks=$forks $name" "$hl" "$hr" "$ht" "$al" "$ar" "$at" "$(echo "$at / $ht" | bc -l)"
	done
done
echo "goal (issue 9): >= 10x warm, >= 6x cold"
