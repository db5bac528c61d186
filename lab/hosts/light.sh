# lightN (SysV, no systemd running): cheap fleet hosts — sshd, nginx, redis, cron via init
# scripts; no seeded firewall rules; databases disabled.
set -euo pipefail
update-rc.d postgresql disable >/dev/null
update-rc.d mariadb disable >/dev/null
