#!/bin/bash
# bench/stops-units.sh install|remove|names|running — nine extra units on a
# lab systemd host, for `make bench-fleet`'s many-units host (bench/stops.sh)
# and the parallel-stop lab tests (actions/stops_lab_test.go). Run as root ON
# the host (pipe it through ssh: `ssh root@sys1 bash -s install <this`).
#
# `install` writes the units into /etc/systemd/system (the host's own
# copy-on-write layer), enables and starts them; `remove` stops, disables
# and deletes every trace of them (unit files, .wants links, failed state),
# so the host's seeded state (lab/README.md) is exactly as before. The lab's
# cached root tree is not touched: no lab rebuild.
#
# The nine units a plan stops (`names`), with a realistic spread of stop times:
#
#   bench-db.service       SIGTERM handler flushes for ~1 s (the slowest)   enabled
#   bench-api.service      ExecStop= drains for 0.5 s; bench-sidecar.service
#                          is PartOf= it (stopped with it: a side effect)     enabled
#   bench-queue.service    ExecStop= 0.3 s                                   enabled-runtime
#   bench-ingest.service   socket-activated (bench-ingest.socket, its trigger),
#                          ExecStop= 0.2 s                                   static, running
#   bench-mail.service     stops at once                                     enabled
#   bench-cache.service    stops at once                                     active+disabled
#   bench-web.socket       listening, its service never started              enabled
#   bench-backup.timer     OnCalendar daily                                  enabled
#   bench-report.timer     every hour                                        enabled
#
# The services have StartLimitIntervalSec=0: the bench starts them again
# and again. BENCH_SLOW (seconds, default 1) sets bench-db's stop time. BENCH_REFUSE=1
# adds RefuseManualStop= to bench-mail (a unit whose stop fails, for tests).
set -euo pipefail
D=/etc/systemd/system
NAMES="bench-db bench-api bench-queue bench-ingest bench-mail bench-cache bench-web.socket bench-backup.timer bench-report.timer"
ALL="bench-db.service bench-api.service bench-sidecar.service bench-queue.service bench-ingest.service bench-ingest.socket bench-mail.service bench-cache.service bench-web.socket bench-web.service bench-backup.timer bench-backup.service bench-report.timer bench-report.service"
# The units running once installed (what `running` restarts after a unit's stop was timed alone).
RUNNING="bench-db.service bench-api.service bench-sidecar.service bench-queue.service bench-ingest.socket bench-ingest.service bench-mail.service bench-cache.service bench-web.socket bench-backup.timer bench-report.timer"

svc() { # name description stop-time(s, "" none) [extra [Unit] lines] [extra [Service] lines] [install]
	local stop=""
	[ -n "$3" ] && stop="ExecStop=/bin/sleep $3"
	cat >"$D/$1.service" <<EOF
[Unit]
Description=$2
StartLimitIntervalSec=0
$4

[Service]
ExecStart=/bin/sleep infinity
$stop
$5

$6
EOF
}

install_units() {
	local slow=${BENCH_SLOW:-1}
	cat >"$D/bench-db.service" <<EOF
[Unit]
Description=Bench database (flushes for ${slow}s on SIGTERM)
StartLimitIntervalSec=0

[Service]
KillMode=mixed
ExecStart=/bin/bash -c 'trap "sleep $slow; exit 0" TERM; sleep infinity & wait'

[Install]
WantedBy=multi-user.target
EOF
	svc bench-api "Bench API (drains for 0.5s)" 0.5 "" "" $'[Install]\nWantedBy=multi-user.target'
	svc bench-sidecar "Bench API sidecar (PartOf bench-api)" "" "PartOf=bench-api.service" "" $'[Install]\nWantedBy=multi-user.target'
	svc bench-queue "Bench queue (0.3s to stop)" 0.3 "" "" $'[Install]\nWantedBy=multi-user.target'
	svc bench-ingest "Bench ingest (socket-activated, 0.2s to stop)" 0.2 "" "" ""
	local refuse=""
	[ "${BENCH_REFUSE:-}" = 1 ] && refuse="RefuseManualStop=yes"
	svc bench-mail "Bench mail" "" "$refuse" "" $'[Install]\nWantedBy=multi-user.target'
	svc bench-cache "Bench cache (started, not enabled)" "" "" "" $'[Install]\nWantedBy=multi-user.target'
	svc bench-web "Bench web (only through its socket)" "" "" "" ""
	cat >"$D/bench-ingest.socket" <<EOF
[Unit]
Description=Bench ingest socket

[Socket]
ListenStream=127.0.0.1:7802

[Install]
WantedBy=sockets.target
EOF
	cat >"$D/bench-web.socket" <<EOF
[Unit]
Description=Bench web socket

[Socket]
ListenStream=127.0.0.1:7801

[Install]
WantedBy=sockets.target
EOF
	for t in backup report; do
		cat >"$D/bench-$t.service" <<EOF
[Unit]
Description=Bench $t job

[Service]
Type=oneshot
ExecStart=/bin/true
EOF
	done
	cat >"$D/bench-backup.timer" <<EOF
[Unit]
Description=Bench nightly backup

[Timer]
OnCalendar=*-*-* 02:30:00

[Install]
WantedBy=timers.target
EOF
	cat >"$D/bench-report.timer" <<EOF
[Unit]
Description=Bench hourly report

[Timer]
OnActiveSec=1h
OnUnitActiveSec=1h

[Install]
WantedBy=timers.target
EOF
	systemctl daemon-reload
	systemctl -q enable bench-db bench-api bench-sidecar bench-mail bench-ingest.socket bench-web.socket bench-backup.timer bench-report.timer
	systemctl -q enable --runtime bench-queue
	systemctl start $RUNNING
	sleep 0.5 # bench-db's shell sets its SIGTERM trap
}

remove_units() {
	local u
	systemctl stop $ALL 2>/dev/null || true
	# A unit that refuses a manual stop (BENCH_REFUSE) is killed instead.
	for u in $ALL; do
		if systemctl -q is-active "$u"; then
			systemctl kill -s KILL "$u" || true
		fi
	done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		systemctl -q is-active $ALL 2>/dev/null || break
		sleep 0.1
	done
	systemctl -q disable $ALL 2>/dev/null || true
	systemctl -q disable --runtime $ALL 2>/dev/null || true
	for u in $ALL; do
		rm -f "$D/$u" "$D"/*.wants/"$u" /run/systemd/system/*.wants/"$u"
	done
	systemctl daemon-reload
	systemctl reset-failed $ALL 2>/dev/null || true
}

case "${1:-}" in
install) remove_units; install_units ;;
remove) remove_units ;;
names) echo "$NAMES" ;;
running) systemctl start $RUNNING; sleep 0.5 ;;
*) echo "usage: $0 install|remove|names|running" >&2; exit 2 ;;
esac
