#!/usr/bin/env bash
# check.sh — the whole test suite against a real lab, as the README's test
# command and CI run it: install what the tests need, bring up the lab, run
# every test, and always tear the lab down again. Root, Debian 12.
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
# Beyond the lab: sshd on the control machine for the SSH transport tests,
# which start their own sshd instances on loopback.
test_pkgs=(openssh-server openssh-client restic)
have=$(dpkg-query -W -f='${db:Status-Abbrev}\n' "${test_pkgs[@]}" 2>/dev/null | grep -c '^ii ' || true)
if [ "$have" != ${#test_pkgs[@]} ]; then
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

step "go vet"
go vet ./...

step "go test"
log=$(mktemp /tmp/holiday-test.XXXXXX.log)
set +e
go test -count=1 -timeout 20m -v ./... 2>&1 | tee "$log" |
  grep --line-buffered -vE '^\s*(=== (RUN|PAUSE|CONT|NAME)|--- PASS)'
rc=${PIPESTATUS[0]}
set -e
skips=$(grep -E '^\s*--- SKIP' "$log" || true)
if [ -n "$skips" ]; then
  echo "== skipped tests:"; echo "$skips"
  if [ "${CI:-}" = true ]; then
    echo "check: tests were skipped under CI=true; every component must be present in CI" >&2
    rc=1
  fi
fi
echo "== test log: $log"
exit $rc
