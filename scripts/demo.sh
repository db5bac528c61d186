#!/usr/bin/env bash
# demo.sh — the README's first command: holiday's main job on its embedded
# default, a local lab of real hosts and a local repository. It installs what
# the lab needs, brings the lab up (and leaves it up for you to explore; `make
# lab-down` removes it), builds holiday, and runs the cycle that exists so far
# against examples/lab.yaml: validate, preflight, a backup into a local
# repository that stock restic reads too, lockdown, status, restore.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "demo: Go is not installed (see README: prerequisites)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "demo: run as root: the lab needs network namespaces and systemd-nspawn" >&2; exit 1; }

t0=$SECONDS
step() { echo; echo "== [demo +$((SECONDS-t0))s] $*"; }

step "installing what the lab needs (cached after the first run)"
lab/setup.sh
step "bringing the lab up"
lab/up.sh
. /var/tmp/holiday-lab/env
step "building holiday"
make --no-print-directory build
H=$PWD/bin/holiday
PLAN=examples/lab.yaml
# The demo keeps its journals and key beside the lab, not in your home.
STATE=(--state-dir "$LAB_DIR/state" --journal-key "$LAB_DIR/journal.key")

step "holiday plan validate: every example plan, strictly"
$H plan validate examples/*.yaml

step "holiday repo: a local repository in restic's format"
export HOLIDAY_REPOSITORY=$LAB_DIR/repo HOLIDAY_PASSWORD_FILE=$LAB_DIR/repo.pass
[ -s "$HOLIDAY_PASSWORD_FILE" ] || (umask 077 && head -c 24 /dev/urandom | base64 >"$HOLIDAY_PASSWORD_FILE")
[ -f "$HOLIDAY_REPOSITORY/config" ] || $H repo init
$H repo backup --tag demo "$LAB_ROOTFS/etc"
$H repo snapshots
$H repo check --read-data
echo "-- the same repository, read by stock restic $(restic version | awk '{print $2}'):"
RESTIC_PASSWORD_FILE=$HOLIDAY_PASSWORD_FILE restic -r "$HOLIDAY_REPOSITORY" snapshots

step "holiday plan: read-only preflight of the repository and every lab host and what lockdown would change, its backups first"
$H plan -f $PLAN

step "holiday lockdown: each host's backups (files, sys2's PostgreSQL and MariaDB dumps, sysv1's frozen disk), read back and verified, then stop what the plan names, every step journaled"
$H lockdown -f $PLAN "${STATE[@]}"
echo "-- the hosts' snapshots, read by stock restic:"
RESTIC_PASSWORD_FILE=$HOLIDAY_PASSWORD_FILE restic -r "$HOLIDAY_REPOSITORY" snapshots --tag holiday

step "holiday status: verify on every host that the lockdown holds"
$H status -f $PLAN "${STATE[@]}"

step "holiday restore: put every host back exactly as it was"
$H restore -f $PLAN "${STATE[@]}"

step "done in $((SECONDS-t0))s; the lab is still up (make lab-down removes it)"
