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
# LIGHT_HOSTS>=N, or the script stops before anything runs. With HOSTS
# above 10 one run measures 10 hosts and then HOSTS (SIZES overrides the
# default "10 $HOSTS": ascending, each at most HOSTS) and prints how each
# tool's time grows with hosts: total and per host at each size, and the
# growth factor beside the growth in hosts. For 50:
# LIGHT_HOSTS=50 make lab-up, then HOSTS=50 make bench-fleet-firewall.
# Needs Debian's ansible. Takes the lab's per-host locks exclusively.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=bench-fleet-firewall
HOSTS=${HOSTS:-${LIGHT_HOSTS:-10}}
# shellcheck source=bench/lib.sh
. bench/lib.sh
if [ "$HOSTS" -gt 10 ]; then SIZES=${SIZES:-10 $HOSTS}; else SIZES=${SIZES:-$HOSTS}; fi
prev=0
for n in $SIZES; do
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt "$prev" ] && [ "$n" -le "$HOSTS" ] ||
		die "SIZES=\"$SIZES\": want ascending host counts, each at most HOSTS=$HOSTS"
	prev=$n
done
bench_setup
FORKS=${FORKS:-10}
all_hosts=("${hosts[@]}")

# write_fw_plan: the plan over $hosts: lib.sh's write_plan, with IPv6
# management and addresses, and the firewall.
write_fw_plan() {
	local h a6
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
}

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

declare -A R
for n in $SIZES; do
	hosts=("${all_hosts[@]:0:n}")
	N=$n
	write_fw_plan
	write_inventory
	before=$(state)
	grep -q stopped <<<"$before" && { echo "$BENCH: a service is stopped before the bench:" >&2; grep stopped <<<"$before" >&2; exit 1; }
	grep -q HOLIDAY <<<"$before" && die "a host already has a HOLIDAY chain before the bench"
	for forks in $FORKS; do
		for k in hcl hcr hwl hwr acl acr awl awr; do eval "$k=()"; done
		for r in $(seq "$RUNS"); do
			echo "$BENCH: $n hosts, forks=$forks run $r/$RUNS" >&2
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
			eval "R[$k.$n.$forks]=\$(median \"\${$k[@]}\")"
		done
	done
	ssh_stop
	if ! diff -q "$W/rules.holiday" "$W/rules.ansible" >/dev/null; then
		echo
		echo "the chains differ at $n hosts (${hosts[0]%%=*}; < holiday, > ansible):"
		diff "$W/rules.holiday" "$W/rules.ansible" || true
	fi
done

# total K N F: lockdown + restore, K one of hc hw ac aw (tool, cold/warm),
# at N hosts and F forks.
total() { echo "${R[${1}l.$2.$3]} + ${R[${1}r.$2.$3]}" | bc -l; }

for n in $SIZES; do
	echo
	echo "holiday lockdown+restore vs. Ansible, services + firewall (v4+v6, 3 allows, log_drops), $n light hosts, median of $RUNS runs, seconds; rules identical after every restore"
	printf '%-16s %24s %24s %16s\n' "" "holiday lock+rest=total" "ansible lock+rest=total" "ansible/holiday"
	for forks in $FORKS; do
		for k in w c; do
			name=cold; [ $k = w ] && name=warm
			ht=$(total h$k "$n" "$forks") at=$(total a$k "$n" "$forks")
			printf '%-16s %6.2f + %5.2f = %6.2f %6.2f + %5.2f = %6.2f %15.1fx\n' "forks=$forks $name" \
				"${R[h${k}l.$n.$forks]}" "${R[h${k}r.$n.$forks]}" "$ht" "${R[a${k}l.$n.$forks]}" "${R[a${k}r.$n.$forks]}" "$at" "$(echo "$at / $ht" | bc -l)"
		done
	done
done
echo "goal (issue 9): >= 10x warm, >= 6x cold"

read -r -a sizes <<<"$SIZES"
[ "${#sizes[@]}" -gt 1 ] || exit 0
lo=${sizes[0]} hi=${sizes[-1]}
echo
echo "how each tool's time grows with hosts: lockdown+restore in seconds, total and per host; growth = total at $hi hosts / total at $lo (hosts: $(echo "$hi / $lo" | bc -l | xargs printf '%.1f')x)"
printf '%-16s %6s %20s %20s %16s\n' "" "hosts" "holiday total  /host" "ansible total  /host" "ansible/holiday"
for forks in $FORKS; do
	for k in w c; do
		name=cold; [ $k = w ] && name=warm
		for n in "${sizes[@]}"; do
			ht=$(total h$k "$n" "$forks") at=$(total a$k "$n" "$forks")
			printf '%-16s %6d %13.2f %6.3f %13.2f %6.3f %15.1fx\n' "forks=$forks $name" "$n" \
				"$ht" "$(echo "$ht / $n" | bc -l)" "$at" "$(echo "$at / $n" | bc -l)" "$(echo "$at / $ht" | bc -l)"
		done
		printf '%-16s %6s %19.1fx %19.1fx\n' "forks=$forks $name" "growth" \
			"$(echo "$(total h$k "$hi" "$forks") / $(total h$k "$lo" "$forks")" | bc -l)" \
			"$(echo "$(total a$k "$hi" "$forks") / $(total a$k "$lo" "$forks")" | bc -l)"
	done
done
