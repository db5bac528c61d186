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
ENV=${HOLIDAY_LAB_ENV:-${HOLIDAY_LAB_DIR:-/var/tmp/holiday-lab}/env}
[ -r "$ENV" ] || { echo "bench-fleet-plan: lab not up ($ENV missing): make lab-up" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV"
command -v ansible-playbook >/dev/null || { echo "bench-fleet-plan: ansible-playbook missing: apt-get install ansible" >&2; exit 1; }
RUNS=${RUNS:-3}
N=${HOSTS:-10}

W=$(mktemp -d /tmp/holiday-bench.XXXXXX)
trap 'ssh_stop; rm -rf "$W"' EXIT
ssh_stop() { for s in "$W"/cp/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null || true; done; }

hosts=()
for i in $(seq 1 "$N"); do
	a=$(tr ' ' '\n' <<<"$LAB_HOSTS" | sed -n "s/^light$i=//p")
	[ -n "$a" ] || { echo "bench-fleet-plan: the lab has no light$i (LIGHT_HOSTS=$N make lab-up)" >&2; exit 1; }
	hosts+=("light$i=$a")
done

# The lab's cooperative locks: exclusive, since the cold runs clear the
# agent directory.
mkdir -p "$LAB_DIR/locks"
for h in "${hosts[@]}"; do
	exec {fd}>"$LAB_DIR/locks/${h%%=*}"
	flock "$fd"
done

if [ -n "${HOLIDAY_BIN:-}" ]; then
	cp "$HOLIDAY_BIN" "$W/holiday" # a given static build instead of this tree's
else
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=bench" -o "$W/holiday" ./cmd/holiday
fi

{
	echo "version: 1"
	echo "name: bench-fleet-plan"
	echo "management: [10.213.0.0/24]"
	echo "ssh: {user: ops, identity: $LAB_SSH_KEY, known_hosts: $LAB_KNOWN_HOSTS, become: sudo}"
	echo "defaults: {backup: none, stop: [redis-server, nginx], firewall: {allow: [{tcp: 22}], ipv6: drop-all}}"
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

clear_agents() {
	for h in "${hosts[@]}"; do
		ssh -F /dev/null -n -i "$LAB_SSH_KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$LAB_KNOWN_HOSTS" \
			-o StrictHostKeyChecking=yes -o BatchMode=yes root@"${h#*=}" 'rm -rf /var/lib/holiday/agent' &
	done
	wait
}

# secs CMD...: wall time of CMD in seconds; the command must succeed.
secs() {
	local s e
	s=$(date +%s.%N)
	"$@" >"$W/out" 2>&1 || { echo "bench-fleet-plan: failed: $*" >&2; tail -20 "$W/out" >&2; exit 1; }
	e=$(date +%s.%N)
	echo "$e - $s" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

declare -A R
for forks in 5 10; do
	hc=() hw=() ac=() aw=()
	for _ in $(seq "$RUNS"); do
		clear_agents
		hc+=("$(secs "$W/holiday" plan -f "$W/plan.yaml" -p "$forks" --json)")
		grep -q '"uploaded": true' "$W/out" || { echo "bench-fleet-plan: cold run did not upload" >&2; exit 1; }
		hw+=("$(secs "$W/holiday" plan -f "$W/plan.yaml" -p "$forks" --json)")
		grep -q '"uploaded": true' "$W/out" && { echo "bench-fleet-plan: warm run uploaded" >&2; exit 1; }
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
