# sys1 (systemd): web host. Runs in a chroot of the host's own copy-on-write root at lab-up,
# before it boots. lab-worker is started (not enabled) by up.sh once the host is up.
set -euo pipefail
systemctl --root=/ -q enable nginx.service redis-server.service
systemctl --root=/ -q disable postgresql.service mariadb.service mariadb.socket
