#!/bin/bash
# rootfs-seed.sh — runs ONCE inside the chroot of the freshly debootstrapped tree (setup.sh),
# and seeds what every lab host shares. Per-host state (addresses, keys, which units are
# enabled, firewall rules) is applied at lab-up by lab/hosts/<role>.sh.
# The lab's own files (units, init scripts, lab-firewall, lab-sysv-init) were copied in from
# lab/rootfs/ before this runs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# --- users: ops (passwordless sudo, sudo's default env_reset kept), guest (no sudo) ---
for u in ops guest; do
  id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash -c "lab $u" "$u"
  usermod -p '*' "$u"   # no password, but not locked ("!"), so key logins work
done
echo 'ops ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/ops
chmod 0440 /etc/sudoers.d/ops
visudo -cqf /etc/sudoers.d/ops
grep -q '^Defaults[[:space:]]*env_reset' /etc/sudoers   # Debian's default; tests rely on it
usermod -p '*' root

# --- sshd: key-only, one ed25519 host key written per host at lab-up ---
rm -f /etc/ssh/ssh_host_*
cat >/etc/ssh/sshd_config.d/10-lab.conf <<'CONF'
# holiday lab: key logins only; many parallel sessions for fleet runs
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 200:30:400
MaxSessions 64
CONF

# --- services: a stable, quiet host without network access ---
# Timers that would reach for the network or churn state during a test are off (chkrootkit's,
# half an hour after boot, fails in a container and leaves chkrootkit.service "failed" until the
# next boot: a reboot test then saw a state change no one made).
for t in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer chkrootkit.timer; do
  systemctl --root=/ -q disable "$t" 2>/dev/null || true
done
# rsync stays enabled but never starts: ConditionPathExists=/etc/rsyncd.conf fails (no such file),
# and /etc/default/rsync RSYNC_ENABLE=false for its init script. It is the "inactive+enabled" unit.
rm -f /etc/rsyncd.conf
systemctl --root=/ -q enable rsync.service
sed -i 's/^RSYNC_ENABLE=.*/RSYNC_ENABLE=false/' /etc/default/rsync
systemctl --root=/ -q enable lab-firewall.service lab-echo.socket lab-tick.timer
systemctl --root=/ -q mask lab-masked.service
mkdir -p /var/lib/lab /etc/lab /etc/iptables
# init scripts for the SysV hosts (systemd ignores them where a native unit exists)
update-rc.d lab-firewall defaults >/dev/null
update-rc.d lab-worker defaults >/dev/null
update-rc.d lab-worker disable >/dev/null

# --- databases: real clusters with a seeded "shop" database, stopped again afterwards ---
pg_ctlcluster 15 main start
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE DATABASE shop;
\c shop
CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, qty integer NOT NULL);
INSERT INTO items VALUES (1, 'sunscreen', 12), (2, 'towel', 5), (3, 'flip-flops', 7);
SQL
pg_ctlcluster 15 main stop
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock >/tmp/mariadbd-seed.log 2>&1 &
for _ in $(seq 100); do [ -S /run/mysqld/mysqld.sock ] && break; sleep 0.1; done
mariadb --socket=/run/mysqld/mysqld.sock <<'SQL'
CREATE DATABASE shop;
USE shop;
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INT NOT NULL);
INSERT INTO items VALUES (1, 'sunscreen', 12), (2, 'towel', 5), (3, 'flip-flops', 7);
SQL
mariadb-admin --socket=/run/mysqld/mysqld.sock shutdown
wait
rm -f /tmp/mariadbd-seed.log

# --- a lived-in touch and less noise ---
echo 'holiday lab host' >/etc/motd
rm -f /var/cache/apt/archives/*.deb /var/lib/apt/lists/*_Packages 2>/dev/null || true
