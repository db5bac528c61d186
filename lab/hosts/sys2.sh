# sys2 (systemd): database host, INPUT policy DROP. Runs like sys1.sh.
set -euo pipefail
systemctl --root=/ -q enable postgresql.service mariadb.service
systemctl --root=/ -q disable nginx.service redis-server.service
