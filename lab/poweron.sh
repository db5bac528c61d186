#!/usr/bin/env bash
# lab/poweron.sh NAME — the power button of a systemd lab host that was powered off from
# inside (holiday lockdown's power step): it boots again on the root it had. Waits up to
# 60 s for the host to be off first (a delayed poweroff may still be on its way).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
name=${1:?usage: lab/poweron.sh NAME}
D=$LAB_DIR/hosts/$name
[ -d "$D" ] || { echo "lab/poweron.sh: no lab host $name" >&2; exit 1; }
for _ in $(seq 300); do
  if [ -e "$D/off" ]; then
    touch "$D/poweron"
    echo "[lab] $name: power button pressed"
    exit 0
  fi
  sleep 0.2
done
echo "lab/poweron.sh: $name is not powered off (only systemd hosts powered off from inside wait for the button)" >&2
exit 1
