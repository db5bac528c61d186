# sysv1 (SysV, no systemd running): runs in a chroot of the host's root before lab-sysv-init
# boots it. Its firewall is on iptables-legacy, as on an older host.
set -euo pipefail
update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy
update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-legacy
# running+enabled: ssh nginx redis-server cron lab-firewall (S links in rc2.d)
# stopped+enabled: rsync (S links, but RSYNC_ENABLE=false in /etc/default/rsync)
# running+disabled: lab-worker (K links only; lab-sysv-init starts it from /etc/lab/start-after-boot)
# stopped+disabled: postgresql mariadb
update-rc.d postgresql disable >/dev/null
update-rc.d mariadb disable >/dev/null
echo lab-worker >/etc/lab/start-after-boot
