#!/usr/bin/env bash
# demo.sh — the README's first command: holiday's main job on its embedded
# default, a local lab of real hosts and a local repository. It installs what
# the lab needs, brings the lab up (leaving it up for you to explore; `make
# lab-down` removes it), builds holiday and runs it against examples/lab.yaml.
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
step "building holiday"
make --no-print-directory build
H=bin/holiday

step "holiday plan validate examples/lab.yaml examples/annotated.yaml"
$H plan validate examples/lab.yaml examples/annotated.yaml

step "done in $((SECONDS-t0))s; the lab is still up: make lab-down removes it"
