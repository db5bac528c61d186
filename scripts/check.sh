#!/usr/bin/env bash
# check.sh — the whole test suite against a real lab, as the README's test
# command and CI run it: install what the tests need, bring up the lab, run
# make lint (gofmt, go vet, staticcheck), every test, and the unit tests
# again under the race detector, and always tear the lab down again. Root,
# Debian 12.
#
# With CI=true a skipped test is a failure: in CI every component is present,
# so a skip can only mean a test did not run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "check: Go is not installed (see README: prerequisites)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "check: run as root: the lab needs network namespaces and systemd-nspawn" >&2; exit 1; }

t0=$SECONDS
step() { echo "== [check +$((SECONDS-t0))s] $*"; }

step "installing what the tests need"
lab/setup.sh
# Beyond the lab (lab/setup.sh: ssh, ip, ss, iptables-*-save, setpriv, …),
# what the tests run on this machine itself:
#   openssh-server   sshd: sshdtest starts its own instances on loopback
#   openssh-client   ssh-keygen for test host keys; ssh for labtest
#   restic           the format oracle of the repository tests
#   sudo             sudo and visudo: agentctl's TestSudo deploys the agent
#                    through sudo as a NOPASSWD test user
#   gcc, libc6-dev   cgo, which go test -race needs
#   attr             getfattr: restored trees are compared xattr by xattr
#   util-linux       losetup, nsenter, fsfreeze: the lab disk and its freeze
#   passwd, e2fsprogs, mount
#                    useradd/usermod/userdel, mkfs.ext4, mount/umount: in
#                    every Debian install, named so a trimmed image shows
test_pkgs=(openssh-server openssh-client restic sudo gcc libc6-dev passwd e2fsprogs mount attr util-linux)
have=$(dpkg-query -W -f='${db:Status-Abbrev}\n' "${test_pkgs[@]}" 2>/dev/null | grep -c '^ii ' || true)
if [ "$have" != ${#test_pkgs[@]} ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${test_pkgs[@]}" >/dev/null
fi

# One test run per machine at a time: the lab has fixed names.
exec 9>/run/lock/holiday-check.lock
flock -n 9 || { echo "check: another test run holds /run/lock/holiday-check.lock" >&2; exit 1; }

cleanup() {
  rc=$?
  step "tearing the lab down"
  lab/down.sh || rc=1
  lab/status.sh || { echo "check: the lab left something behind (above)" >&2; rc=1; }
  step "done, exit $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "bringing the lab up"
LIGHT_HOSTS=${LIGHT_HOSTS:-4} lab/up.sh   # four light hosts too: the fleet and agent tests use them

# Every step runs even when one before it failed, so one CI run shows all
# that is wrong; the exit code is that of the first failure.
rc=0
fail() { [ "$rc" != 0 ] || rc=$1; echo "== [check] FAILED: $2" >&2; }

step "make lint: gofmt, go vet, staticcheck"
make --no-print-directory lint || fail $? "make lint"

step "go test"
log=$(mktemp /tmp/holiday-test.XXXXXX.log)
set +e
go test -count=1 -timeout 45m -v ./... 2>&1 | tee "$log" |
  grep --line-buffered -vE '^\s*(=== (RUN|PAUSE|CONT|NAME)|--- PASS)'
trc=${PIPESTATUS[0]}
set -e
[ "$trc" = 0 ] || fail "$trc" "go test"
# A second guard: under CI=true internal/testenv already fails a test that
# skips for a missing component.
skips=$(grep -E '^\s*--- SKIP' "$log" || true)
if [ -n "$skips" ]; then
  echo "== skipped tests:"; echo "$skips"
  if [ "${CI:-}" = true ]; then
    fail 1 "tests were skipped under CI=true; every component must be present in CI"
  fi
fi
echo "== test log: $log"

# The race detector over the unit tests (-short: the lab tests and the
# long crash-kill, 10M-entry and 1 GiB corpus runs ran above, without it; a
# -short skip is a plain skip, a missing component still fails under
# CI=true). -race needs cgo, which the Makefile turns off.
step "go test -race -short"
set +e
CGO_ENABLED=1 go test -race -short -count=1 -timeout 20m ./... 2>&1 | tee "$log.race"
trc=${PIPESTATUS[0]}
set -e
[ "$trc" = 0 ] || fail "$trc" "go test -race"
echo "== race log: $log.race"
exit $rc
